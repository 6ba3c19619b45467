// 'quantlens/wasm' is the WebAssembly core itself (web/dist/quantlens_core.wasm). Imported
// through a bundler's file/URL loader (esbuild: loader { '.wasm': 'file' }; Vite:
// 'quantlens/wasm?url'), it gives the URL to pass to configureCore({ wasmUrl }).
declare const wasmUrl: string;
export default wasmUrl;
