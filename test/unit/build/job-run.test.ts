import { describe, expect, it } from "vitest";
import { blameUpload } from "../../../src/build/job-run.js";

describe("blameUpload", () => {
  it("blames the upload when the builder said nothing of its own", () => {
    expect(blameUpload([])).toBe(true);
    expect(blameUpload(["kce: receiving the build context"])).toBe(true);
  });

  it("blames the upload when the builder's error is about the archive", () => {
    expect(blameUpload(['time="x" level=fatal msg="error building image: unexpected EOF"'])).toBe(true);
    expect(blameUpload(["tar: short read", "error: gzip: invalid header"])).toBe(true);
  });

  it("keeps the builder's own failure (a failing RUN) when the session merely closed late", () => {
    expect(
      blameUpload([
        "about-to-fail",
        "error building image: error building stage: failed to execute command: waiting for process to exit: exit status 3",
      ]),
    ).toBe(false);
    expect(blameUpload(["#6 ERROR: process \"/bin/sh -c exit 3\" did not complete successfully: exit code: 3"])).toBe(false);
  });
});

describe("blameUpload with Kaniko's bare top-level errors", () => {
  it("keeps a refused push as the builder's failure", () => {
    expect(
      blameUpload([
        'time="x" level=info msg="To simulate EOF and exit, press \'Ctrl+D\'"',
        'error checking push permissions -- make sure you entered the correct tag name, and that you are authenticated correctly, and try again: checking push permission for "h:5001/x:1": POST http://h:5001/v2/x/blobs/uploads/: UNAUTHORIZED: authentication required',
      ]),
    ).toBe(false);
  });
});
