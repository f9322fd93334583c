// Package ratelimit holds the abuse limits of DESIGN §5: keyed limiters
// that answer "may this e-mail try to log in", "may this address register
// again", "may we mail this address again" with a Retry-After, and a
// ConnLimiter that caps concurrent connections per client address.
//
// # Semantics
//
// A Limiter allows Limit hits per key per Window. A key's window opens at
// its first counted hit; the hit that reaches Limit is allowed and locks
// the key for a full Window from that moment (so "10 failed logins lock the
// e-mail for 15 minutes" means 15 minutes after the tenth, whenever in the
// window it came). Refused hits are not counted and do not extend the
// lock. A key therefore gets at most Limit hits, then waits a full Window:
// no more than Limit per Window in the long run, and no more than
// 2×Limit−1 in any Window-long interval (Limit−1 at the end of one window,
// Limit at the start of the next). Retry-After is the time until the lock
// or window ends.
//
// Two patterns use it:
//
//   - count every request (registrations and password resets per client
//     address, mail per recipient): Allow, and answer 429 with its
//     retryAfter when it refuses;
//   - count only failures (logins per e-mail): Allow before checking the
//     password and Refund after a success. Counting first reserves the
//     attempt, so a burst of concurrent guesses cannot all pass a check
//     made before any of them failed; the refund takes a success back out,
//     so only failures lock. Limits that should forget earlier failures
//     after a success (per e-mail: whoever logged in knows the password)
//     call Reset instead; a limit per client address must not, or an
//     attacker with an account of their own would clear their address's
//     failures by logging in to it between guesses. A locked key refuses
//     before the password is checked: the right password too waits for the
//     lock to end, as DESIGN §5 requires.
//
// # Memory and eviction
//
// A Limiter tracks at most MaxKeys keys, whatever the number of distinct
// keys it sees: a key is stored as its 64-bit hash (maphash, with a seed
// chosen per limiter, so an attacker cannot aim collisions; two of 100 000
// keys share a count with probability ~3·10⁻¹⁰) in one of up to 16 shards,
// each with its own mutex, map and table of fixed-size entries: about 80
// bytes per key in all (TestMillionKeys measures it), ~8 MiB for 100 000
// keys, and Allow neither allocates nor copies the key. A new key in a full
// shard replaces, in this order:
//
//  1. the key whose lock ended longest ago, if any lock has ended;
//  2. the least recently hit key below its limit (its window may have
//     ended or not);
//  3. only if every key in the shard is locked, the key whose lock ends
//     soonest.
//
// What this promises: a locked key stays locked until its lock ends while
// its shard holds any key below its limit — a flood of distinct keys that
// each stay below the limit, however many, never unlocks it. To unlock a
// key early an attacker must lock a whole shard's worth of other keys
// (MaxKeys/shards keys, Limit hits each, within one Window: with the
// defaults, ~1 M requests in 15 minutes from addresses that the per-address
// limits let through), and even then evicts the oldest locks first. The
// trade-off: keys below their limit are forgotten under such a flood, so a
// key that had Limit−1 hits may get Limit more; and when every key is
// locked, the oldest lock goes rather than refusing new keys, because
// refusing every new key would lock out every user, which is the outage a
// flood aims for. A smaller MaxKeys is cheaper to flood; the defaults hold
// every key a normal day produces (see Options).
//
// Metrics, one series per limiter name (DESIGN §9): requests allowed and
// refused, keys tracked and evictions by reason. One Metrics serves every
// limiter of a registry; see NewMetrics.
package ratelimit
