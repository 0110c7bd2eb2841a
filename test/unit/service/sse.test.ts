import { describe, expect, it } from "vitest";
import { formatComment, formatEvent, KEEPALIVE_INTERVAL_MS } from "../../../src/service/sse.js";

describe("formatEvent", () => {
  it.each<[object, string | undefined, string]>([
    [{ phase: "built" }, undefined, 'data: {"phase":"built"}\n\n'],
    [{ phase: "waiting", message: "Waiting for build to start\n" }, undefined, 'data: {"phase":"waiting","message":"Waiting for build to start\\n"}\n\n'],
    [{ phase: "building", message: "Step 1/2\r\nStep 2/2" }, "17", 'id: 17\ndata: {"phase":"building","message":"Step 1/2\\r\\nStep 2/2"}\n\n'],
    [{ phase: "ready", url: "https://hub/user/x/", token: "t" }, "build-x-1", 'id: build-x-1\ndata: {"phase":"ready","url":"https://hub/user/x/","token":"t"}\n\n'],
    [{}, "", "id: \ndata: {}\n\n"],
    [{ phase: "failed" }, "4\r\ndata: forged\n", 'id: 4data: forged\ndata: {"phase":"failed"}\n\n'],
    [{ message: "é ✓ \u2028" }, undefined, 'data: {"message":"é ✓ \u2028"}\n\n'],
    [[1, 2], undefined, "data: [1,2]\n\n"],
  ])("%j (id %j)", (data, id, expected) => {
    expect(formatEvent(data, id)).toBe(expected);
  });

  it("keeps an event to its own lines whatever the data holds", () => {
    const text = formatEvent({ message: "a\nb\rc\r\n\n" }, "1\n2");
    const lines = text.split("\n");
    expect(lines).toEqual(["id: 12", 'data: {"message":"a\\nb\\rc\\r\\n\\n"}', "", ""]);
    expect(text).not.toContain("\r");
  });
});

describe("formatComment", () => {
  it.each([
    ["keepalive", ":keepalive\n\n"],
    ["", ":\n\n"],
    ["two\nlines", ":two lines\n\n"],
    ["crlf\r\nend", ":crlf  end\n\n"],
  ])("%j → %j", (text, expected) => {
    expect(formatComment(text)).toBe(expected);
  });
});

it("keeps BinderHub's keepalive interval of 25 s", () => {
  expect(KEEPALIVE_INTERVAL_MS).toBe(25_000);
});
