import { describe, expect, it } from "vitest";
import { UsageError } from "../../../src/cli/args.js";
import { parseMemory } from "../../../src/cli/commands.js";

describe("parseMemory", () => {
  it.each<[string, number]>([
    ["0", 0],
    ["1", 1],
    ["1048576", 1048576],
    ["1024k", 1024 * 1024],
    ["512m", 512 * 1024 ** 2],
    ["2g", 2 * 1024 ** 3],
    ["2G", 2 * 1024 ** 3],
    ["512M", 512 * 1024 ** 2],
    ["64K", 64 * 1024],
    ["100b", 100],
    ["512mb", 512 * 1024 ** 2],
    ["2GB", 2 * 1024 ** 3],
    [" 2g ", 2 * 1024 ** 3],
  ])("%j → %d bytes", (text, bytes) => {
    expect(parseMemory(text)).toBe(bytes);
  });

  it.each(["", "g", "2t", "1.5g", "-1g", "2 g", "2gi", "2Gi", "2gbb", "0x10", "1e9", "two"])("rejects %j", (text) => {
    let error: unknown;
    try {
      parseMemory(text);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(UsageError);
    expect((error as UsageError).message).toBe(`--memory ${JSON.stringify(text)}: use bytes or a k/m/g suffix (e.g. 2g)`);
    expect((error as UsageError).command).toBe("build");
  });
});
