/** The error `fn` throws (fails the test when it returns normally): for asserting on an error's fields. */
export function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error("expected a throw");
}
