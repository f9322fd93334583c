// Package acl holds who may see and do what (DESIGN §4): accounts,
// organizations with their members and member roles, systems with their
// owner and grants — as an event-sourced state — and an index of roaring
// bitmaps that answers "which systems may this account view" without walking
// any relation.
//
// # Using it
//
// The HTTP layer (package api) turns a request into an Op (GrantRole, Commission,
// PutMember, ...) and calls Index.Do, which authorizes it against the
// current state (DESIGN §4 "who may do what"), expands it into Events,
// hands them to persistence and applies them. At start-up persistence feeds
// the stored snapshot and events to Index.Replay (see Persistence below);
// events written by other nodes since go to Index.Apply. Index.RunExpiry drops expired grants in the background.
// Readers take Index.Snapshot and call Systems, Can, Require and the
// lookups, among them those that authenticate (Token for an account token,
// GatewayKeyHash for a gateway's ingest key); a snapshot is immutable and
// never blocks. Errors wrap the sentinels in errors.go, each documented with
// its HTTP status. Changes fleetscope makes itself — the first support
// account from configuration, demo data — are Events with Actor Platform,
// stamped by Index.Stamp and applied without authorization.
//
// # Rules
//
// An account acts only if its e-mail is verified and belongs to it. On a
// system it holds the union of: its e-mail's role (the owner holds
// RoleOwner; a grant to its e-mail its role), and for each organization it
// is a member of, the org's role's permissions intersected with its member
// role's (all of them for org_admin). Roles nest: owner ⊃ admin ⊃ installer
// ⊃ user ⊃ data ⊃ viewer, as the table of DESIGN §4 has it; PermOwner
// (transfer, delete the system) is the owner's alone, PermAdmin (grant and
// revoke admin) the owner's and admins'. A support account holds everything
// on every existing system.
//
// Grants and memberships name e-mails, not accounts: one to an e-mail with
// no verified account is an invitation and takes effect the moment such an
// account exists, with nothing to re-apply. If several accounts register the
// same e-mail (a squatter before the homeowner), the e-mail belongs to the
// verified one — earliest registration first among equals — so registering
// someone's address takes nothing from them.
//
// A principal holds at most one grant per system; granting again replaces
// its role and expiry. The owner is a register of the system, not a grant:
// it cannot be revoked, only transferred; the previous owner keeps admin.
// An organization cannot own a system. A member role (customer type) is a
// permission set within MemberPerms; editing it changes every member
// holding it at once. A member role that members hold cannot be deleted
// (ErrRoleInUse) — users expect "delete" not to strip people silently —
// but if a deletion races a membership change on another node, or a
// membership names a role that does not exist, the member stays a member
// with no permissions until the role exists again. Deleting a system is
// final: its id and registers are gone for good, its gateways with them.
//
// # Gateways and credentials
//
// A gateway (gateway.go) belongs to one system and has a serial, unique
// among the system's gateways (NormalizeSerial: case does not matter), and
// an ingest key; adding or removing one needs add_gateway on the system.
// Account tokens, password hashes, verification codes and account names
// (cred.go) are events too, so that every node authenticates every account;
// the HTTP layer generates the secrets and the state holds only their
// hashes. None of these changes who may see what: they are registers like
// the others but no part of the bitmap index. They cost heap besides the
// figures below: about 140 bytes a gateway, 100 a token, 185 an account's
// name and password hash (measured with 200 000 of each).
//
// # Convergence
//
// Each event carries a Stamp: a hybrid logical clock reading and the node
// id, unique per event and totally ordered. The state is a set of registers
// — one per account flag, account name, password hash and pending
// verification code, org name, (org, e-mail) membership, (org, name) member
// role, system record, system owner, (system, principal) grant, gateway (by
// gateway id) and account token (by token id) — and an event changes its
// register only if its stamp is greater than the register's (last writer
// wins). Removals (revoke, member, role or gateway deletion, a cleared
// code) are tombstones holding their stamp, so an older put arriving later
// loses. Three registers are not last-writer-wins, because their order is
// fixed: an account's registration keeps the earliest stamp (first
// registration wins an id allocated twice), a system deletion is absorbing
// (and takes the system's gateways: a gateway counts while its register is
// a put naming a live system), and so is a token's revocation (a revoked
// token never authenticates again, whatever put arrives later); their
// tombstones keep the greatest stamp among the deletions. So the state is a
// function of the set of events applied, not of their order or repetition:
// every node converges on the same state.
//
// # Expiry
//
// A grant with an expiry stops counting once the state's time (AsOf) has
// reached it. Expiry is a function of time, not an event: no node writes
// anything when a grant expires, so there is nothing to replicate or to
// conflict, and every node drops the grant at the same instant of its own
// clock. Index.Expire advances the time and updates the index; RunExpiry
// calls it every 250 ms, so a grant stops counting within DESIGN's 1 s.
// An expired grant stays as a register (so that an older grant arriving
// late cannot revive it) until a new grant or a revoke replaces it.
//
// # Index and snapshots
//
// For each principal — an e-mail or an org — the index keeps the role it
// holds on each system (see roleSet: a small sorted slice, or above 256
// systems one roaring bitmap per role level, adjacent equal levels sharing
// one). An account's bitmap for a permission is composed on read from its
// e-mail's set and its organizations' sets. Storing org sets once, instead
// of copying them into every member, makes a grant to an org of any size
// one update and a member role edit a change of one mask per member, and is
// what keeps 2 M systems, 1 M accounts and 10 M grants within the memory
// budget; a read that needs several parts pays one union.
//
// One writer at a time (a mutex) applies events to a working copy built by
// path copying: every map is persistent (ptab, a radix tree by id; htab, a
// hash table in copy-on-write chunks by e-mail and GUID) and every record is
// copied before its first change in a batch, so unchanged accounts, systems
// and orgs are shared between snapshots, never copied. Publishing is one
// atomic pointer store; readers never wait for the writer, and a change is
// visible to every read that starts after Apply returns. Replay, for the
// event log at start-up, changes records in place and publishes once.
//
// # Persistence and snapshots
//
// The package has no HTTP in it (package api serves it); it does keep its
// own persistence: the state is defined by the set of events, and the
// log's tests check what a reload or a snapshot restores against the
// brute-force model of the rules (model_test.go), the package's own test
// oracle — a persistence package apart would need that oracle exported as
// non-test code.
//
// Log (log.go) stores every event in ClickHouse before it is applied and
// tails the events other nodes store. Because the state is a set of
// registers, it can be written down as the events that hold them
// (Snapshot.Export): for every register its winning event — tombstones
// included, with their stamps, so that later events win or lose exactly as
// they would against the original. Replaying that export into an empty
// index rebuilds the state, index and all. Log stores it as a snapshot
// (log_snapshot.go, format in snapfile.go) every ten minutes or million
// events, and start-up folds the newest snapshot plus the events inserted
// after the point it covers, instead of the whole log; a snapshot that
// cannot be used is logged and start-up folds the whole log instead.
//
// Measured with TestIndexHeap (-acl.heap=2000000,1000000,10000000):
// everything — registers, index, system names and addresses, e-mails — takes
// 669 MiB of live heap, 70 bytes per grant, and the process 925 MiB resident
// after the replay (845 MiB with GOMEMLIMIT=1000MiB, which also keeps the
// replay's peak near 1.1 GB instead of 1.6 GB).
package acl
