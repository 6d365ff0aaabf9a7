// The <script> entry: the IIFE build (vite.lib.config.ts, mode "iife") assigns this default export to window.SessionSocket.
import * as SessionSocket from './index.js'
declare global { var SessionSocket: typeof import('./index.js') }
export default SessionSocket
