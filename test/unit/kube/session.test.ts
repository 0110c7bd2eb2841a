// ChannelSession.sendOnChannel: the frame buffer of a message is reused only after the socket wrote it, and no
// message's bytes change while the socket still holds them.
import { EventEmitter } from "node:events";
import type WebSocket from "ws";
import { describe, expect, it } from "vitest";
import { ChannelSession } from "../../../src/kube/session.js";

/** The part of a ws WebSocket the session uses; `send` keeps each message until `write()` calls back. */
class HeldSocket extends EventEmitter {
  readonly OPEN = 1;
  readonly CONNECTING = 0;
  readyState = 1;
  bufferedAmount = 0;
  protocol = "v5.channel.k8s.io";
  readonly held: { message: Buffer; copy: Buffer; done: (err?: Error) => void }[] = [];
  send(message: Buffer, _options: unknown, done: (err?: Error) => void): void {
    this.held.push({ message, copy: Buffer.from(message), done });
  }
  /** The socket wrote the oldest held message. */
  write(err?: Error): Buffer {
    const next = this.held.shift();
    if (!next) throw new Error("nothing held");
    expect(next.message.equals(next.copy), "a message changed while the socket held it").toBe(true);
    next.done(err);
    return next.message;
  }
  ping(): void {}
  terminate(): void {
    this.readyState = 3;
    this.emit("close", 1006, Buffer.alloc(0));
  }
  close(): void {
    this.terminate();
  }
}

function session(): { socket: HeldSocket; channel: ChannelSession } {
  const socket = new HeldSocket();
  const channel = new ChannelSession(socket as unknown as WebSocket, { description: "exec in pod p", pingIntervalMs: 60_000 });
  return { socket, channel };
}

describe("ChannelSession.sendOnChannel", () => {
  it("sends the channel byte and the data, and reuses a buffer only once the socket wrote it", () => {
    const { socket, channel } = session();
    channel.sendOnChannel(0, Buffer.from("first"));
    channel.sendOnChannel(0, Buffer.from("second"));
    const [a, b] = socket.held.map((h) => h.message);
    expect(a?.buffer).not.toBe(b?.buffer); // the first is still held: the second got its own buffer
    expect(channel.pending).toBe(6 + 7);
    const written = socket.write();
    expect(written.toString("latin1")).toBe("\u0000first");
    channel.sendOnChannel(2, Buffer.from("third"));
    const third = socket.held.at(-1)?.message;
    expect(third?.buffer).toBe(written.buffer); // reused
    expect(third?.toString("latin1")).toBe("\u0002third");
    socket.write();
    socket.write();
    expect(channel.pending).toBe(0);
  });

  it("fails the session when the socket could not write a message", () => {
    const { socket, channel } = session();
    channel.sendOnChannel(0, Buffer.from("lost"));
    socket.write(new Error("EPIPE"));
    expect(() => channel.sendOnChannel(0, Buffer.from("next"))).toThrow(/send failed: EPIPE/);
  });

  it("takes a fresh buffer for a message larger than the reused ones", () => {
    const { socket, channel } = session();
    channel.sendOnChannel(0, Buffer.alloc(10));
    const small = socket.write();
    const big = Buffer.alloc(300 * 1024, 7);
    channel.sendOnChannel(0, big);
    const sent = socket.held[0]?.message;
    expect(sent?.length).toBe(big.length + 1);
    expect(sent?.buffer).not.toBe(small.buffer);
    expect(sent?.subarray(1).equals(big)).toBe(true);
  });
});
