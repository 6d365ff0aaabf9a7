// redis-server child processes for e2e specs: the same helper the Node package's tests use.
export { startRedis, type RedisServer, type StartRedisOptions } from '../../test-helpers/redis-server.js'
