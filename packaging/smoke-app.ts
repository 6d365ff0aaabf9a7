// Copied into the temporary app by pack.test.ts and run there, so every import below is the
// installed tarball's: a server and the SDK's client (in Node) reach `ready` and make a call.
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import express from 'express'
import session from 'express-session'
import { Server } from 'socket.io'
import { createSessionSocketServer } from '@session-socket/node'
import { createSessionSocket } from '@session-socket/browser'

interface Methods {
  whoami: () => { sessionId: string; tabId: string }
}

const app = express()
const sessionMiddleware = session({ secret: 'packaging smoke', resave: false, saveUninitialized: false })
const httpServer = createServer(app)
const io = new Server(httpServer)
const ss = createSessionSocketServer(io, { session: sessionMiddleware })
app.use(sessionMiddleware)
app.use(ss.http())
ss.method('whoami', (_params, { sessionId, tabId }) => ({ sessionId, tabId }))
await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve))

const { port } = httpServer.address() as AddressInfo
const s = createSessionSocket<Methods>({ url: `http://127.0.0.1:${port}` })
const ready = new Promise<void>((resolve) => s.on('ready', () => resolve()))
const me = await s.call('whoami')
await ready
console.log(JSON.stringify({ status: s.status, tabId: s.tabId, me }))

s.close()
ss.close()
await io.close()
