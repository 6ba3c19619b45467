// 'quantlens/worker' is a Web Worker script: start it with
//   new Worker(new URL('quantlens/worker'-resolved URL), { type: 'module' })
// (createWorkerClient() does it for you) and talk to it through createWorkerClient().
// Importing it outside a worker does nothing but export serve().

/** Serves QuantLens requests arriving at `scope` (the worker's global scope by default). */
export function serve(scope?: {
  postMessage(message: unknown, transfer?: Transferable[]): void;
  onmessage: ((event: MessageEvent) => unknown) | null;
}): void;
