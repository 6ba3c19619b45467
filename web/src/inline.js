// 'quantlens/inline': the same API as 'quantlens', with the WebAssembly core carried
// inside the JavaScript (base64, about 470 kB), so it needs no file beside the bundle.
// For bundlers that leave new URL('...', import.meta.url) alone (esbuild), single-file
// builds, and workers built from a blob. Importing it configures the core for the whole
// realm, so 'quantlens' imported elsewhere in the same bundle uses the same bytes.
import { fromBase64 } from './base64.js';
import { configureCore } from './core.js';
import wasmBase64 from '../dist/quantlens_core.inline.js';

configureCore({ wasmBinary: fromBase64(wasmBase64) });

export * from './index.js';
