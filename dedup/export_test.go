package dedup

// MaxJoinSchemas is how many schemas a reader of staged records caches.
const MaxJoinSchemas = maxJoinSchemas
