// Package backoff spaces out retries with decorrelated jitter, so that the
// partitions of every instance that met the same outage (a PostgreSQL
// restart, a failover) do not retry in step and meet the recovering server
// all at once. It owns no state beyond one retry loop's last wait.
package backoff
