// What the package's README tells an app to add: the plugin that preloads the wasm module.
import { cairn } from '@cairn/client/vite';

export default { plugins: [cairn()] };
