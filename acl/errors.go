package acl

import "errors"

// Sentinel errors. Callers branch on them with errors.Is; the HTTP layer maps
// them to a status (noted on each). Errors returned by this package wrap one
// of these with a short context, e.g. "acl: no such member role: \"tech\"".
var (
	// ErrInvalid: a malformed operation or event (bad e-mail, unknown role,
	// expiry in the past, field out of range). 400, do not retry.
	ErrInvalid = errors.New("acl: invalid")

	// ErrNotFound: the system, org, account, grant, member or member role does
	// not exist — or the caller may not view the system, so that ids cannot be
	// probed (DESIGN §5: 404, never 403). 404.
	ErrNotFound = errors.New("acl: not found")

	// ErrForbidden: the caller sees the object but lacks the permission the
	// action needs. 403.
	ErrForbidden = errors.New("acl: forbidden")

	// ErrUnverified: the caller's account exists but its e-mail is not
	// verified yet; an unverified account may do nothing but verify. 403.
	ErrUnverified = errors.New("acl: e-mail not verified")

	// ErrExists: the id, GUID or (verified) e-mail is already taken. 409.
	ErrExists = errors.New("acl: already exists")

	// ErrOwnerGrant: the owner's grant changes only by a transfer; it cannot be
	// revoked or replaced by an ordinary grant. 409.
	ErrOwnerGrant = errors.New("acl: the owner's grant changes only by transfer")

	// ErrRoleInUse: a member role still held by members cannot be deleted;
	// move the members to another role first. 409.
	ErrRoleInUse = errors.New("acl: member role in use")

	// ErrLastOrgAdmin: the change would leave the organization without a
	// verified org_admin. 409.
	ErrLastOrgAdmin = errors.New("acl: last org_admin of the organization")
)
