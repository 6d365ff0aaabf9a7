import http from 'node:http'
import { describe, expect, it } from 'vitest'
import { Server } from 'socket.io'
import session from 'express-session'
import { createSessionSocketServer } from '@session-socket/node'

describe('createSessionSocketServer', () => {
  it('should throw at once, naming the fix, when misused', () => {
    const io = new Server(http.createServer())
    try {
      expect(() => createSessionSocketServer({} as Server, { session: session({ secret: 's' }) })).toThrow(/io must be a Socket.IO Server/)
      expect(() => createSessionSocketServer(io, {} as never)).toThrow(/session must be your express-session middleware/)
      expect(() => createSessionSocketServer(io, { session: session({ secret: 's' }), path: 'restore/' })).toThrow(/path must start with "\/"/)
    } finally {
      io.close()
    }
  })
})
