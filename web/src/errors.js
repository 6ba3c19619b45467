// Typed errors. `code` is one of the core's codes (INVALID_MODEL, INVALID_GRAPH,
// UNSUPPORTED_DTYPE, MISSING_EXTERNAL_DATA, UNSAFE_EXTERNAL_DATA, INVALID_ARGUMENT, UNSUPPORTED) or
// ABORTED / IO_ERROR from the JS side; `message` is what the CLI prints.
export class QuantLensError extends Error {
  constructor(code, message, { offset = -1, cause } = {}) {
    super(message, cause ? { cause } : undefined);
    this.name = 'QuantLensError';
    this.code = code;
    this.offset = offset;
  }
}

export function fromCoreError(e, context = '') {
  return new QuantLensError(e.code, context ? `${context}: ${e.message}` : e.message, { offset: e.offset });
}
