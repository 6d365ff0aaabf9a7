export { useSessionSocket } from './use-session-socket.js'
export type { UseSessionSocketOptions, UseSessionSocketResult } from './use-session-socket.js'
