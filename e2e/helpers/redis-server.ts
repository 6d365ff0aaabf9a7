// redis-server child processes for e2e specs: the same helper the Node package's cluster tests use.
export { startRedis, type RedisServer, type StartRedisOptions } from '../../packages/node/test/helpers/redis-server.js'
