export {
  amqpUrl,
  clusterClient,
  ensureServices,
  probeAmqp,
  probeRedis,
  probeTcp,
  redisClusterNodes,
  redisUrl,
  stopServices,
} from './services.js';
export {
  ensureRabbitCluster,
  RABBITMQ_CLUSTER_NODES,
  rabbitClusterCtl,
  rabbitClusterNode,
  rabbitClusterUrls,
  stopRabbitCluster,
} from './rabbitmq-cluster.js';
export { uniqueName } from './names.js';
export { Cleanup, type CollectorNames } from './cleanup.js';
export { FaultProxy } from './fault-proxy.js';
export { TestConsumer } from './consumer.js';
export type { Received } from './consumer.js';
export { waitUntil } from './wait.js';
export { TempRedis } from './temp-redis.js';
export { freePort } from './ports.js';
export { hostileCorpus } from './hostile-corpus.js';
export type { HostileBody } from './hostile-corpus.js';
export { brokerProxy, proxiedAmqpUrl } from './broker-proxy.js';
export { parsePrometheusText, sampleValue } from './prometheus-text.js';
export type { Sample } from './prometheus-text.js';
