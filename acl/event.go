package acl

import (
	"encoding/binary"
	"fmt"
	"time"
	"unicode/utf8"
)

// Kind says what an Event changes. Each kind writes one register (see the
// package doc); the comment lists the Event fields it uses. The numbers are
// part of the encoding: never renumber, only append.
type Kind uint8

const (
	_                   Kind = iota
	KindAccountRegister      // Account, Email: the account exists with this e-mail (first registration wins)
	KindAccountVerify        // Account, Verified: the account's e-mail is (not) verified
	KindAccountSupport       // Account, Support: the account is (not) a platform support account
	KindOrgPut               // Org, Name: the organization exists with this name
	KindMemberPut            // Org, Email, OrgRole: the e-mail is a member with this org role
	KindMemberDelete         // Org, Email: the e-mail is no member
	KindRolePut              // Org, Name, Perms: the member role exists with these permissions
	KindRoleDelete           // Org, Name: the member role does not exist
	KindSystemPut            // System, GUID, Name, Address, Timezone, Monitored, Org: the system exists with this record
	KindSystemDelete         // System: the system is deleted, for good
	KindOwnerSet             // System, Email: the e-mail owns the system
	KindGrantPut             // System, Grantee, Role, Expires: the grantee holds the role on the system
	KindGrantDelete          // System, Grantee: the grantee holds no grant on the system
	KindGatewayPut           // System, Gateway, Serial, Hash: the gateway belongs to the system, with this serial and ingest key hash
	KindGatewayDelete        // System, Gateway: the gateway does not exist
	KindTokenPut             // Account, Token, Hash: the account token exists with this secret hash
	KindTokenDelete          // Token: the account token is revoked, for good
	KindPasswordSet          // Account, PasswordHash: the account's password hash ("" = no password)
	KindCodeSet              // Account, Hash, Expires: the account's pending verification code (zero Hash = none)
	KindAccountName          // Account, Name: the account's display name
	KindTokenMeta            // Token, Expires, Name: when the account token stops authenticating (sliding: written again as it is used) and the client it was issued to
	KindGatewayRekey         // System, Gateway, Serial, Hash, PrevHash, Expires: a GatewayPut with a new ingest key, the previous one still accepted until Expires
	KindSystemCapacity       // System, Capacity: the system's nameplate DC capacity in W (0 = unknown)
	numKinds
)

var kindNames = [...]string{"", "account_register", "account_verify", "account_support",
	"org_put", "member_put", "member_delete", "role_put", "role_delete", "system_put",
	"system_delete", "owner_set", "grant_put", "grant_delete", "gateway_put", "gateway_delete",
	"token_put", "token_delete", "password_set", "code_set", "account_name", "token_meta", "gateway_rekey", "system_capacity"}

func (k Kind) String() string {
	if k == 0 || k >= numKinds {
		return fmt.Sprintf("Kind(%d)", uint8(k))
	}
	return kindNames[k]
}

// Event is one change to the access-control state. Events are the unit of
// persistence and replication: a node stamps them, stores them (see
// MarshalBinary) and applies them; every node applying the same set of events,
// in any order, reaches the same state.
//
// Event is a flat tagged struct rather than one type per kind so that it is
// comparable, cheap to pass by value and simple to store; Kind says which
// fields are used and Validate rejects an event that sets any other.
type Event struct {
	Kind  Kind
	Stamp Stamp     // when and where the event was made; orders it against concurrent changes
	Actor AccountID // who made the change (Platform for fleetscope itself)

	Account AccountID // the account (Account*, TokenPut, PasswordSet, CodeSet)
	Org     OrgID     // the organization (Org*, Member*, Role*), the commissioning org (SystemPut)
	System  SystemID  // the system (System*, OwnerSet, Grant*, Gateway*)
	Gateway GatewayID // the gateway (Gateway*)
	Email   string    // the account's, member's or owner's e-mail, normalized
	Grantee Principal // who holds the grant (Grant*)
	Role    Role      // the granted role, viewer to admin (GrantPut)
	OrgRole string    // OrgAdmin or a member role's name (MemberPut)
	Name    string    // the org's, member role's, system's or account's name
	Perms   Perm      // the member role's permissions, within MemberPerms (RolePut)
	// Expires is Unix ms: when the grant stops counting (GrantPut; 0 =
	// never), when the verification code stops being accepted (CodeSet),
	// when the token stops authenticating (TokenMeta), when the previous
	// ingest key stops being accepted (GatewayRekey).
	Expires int64

	Verified  bool // AccountVerify
	Support   bool // AccountSupport
	Monitored bool // SystemPut: false for fire-safety-only installs that post no data

	GUID     string // SystemPut: the external id on the barcode
	Address  string // SystemPut
	Timezone string // SystemPut: an IANA name; not checked here
	Capacity uint32 // SystemCapacity: W, at most MaxCapacity

	Serial string // GatewayPut: the gateway's serial (a MAC, ...), normalized (see NormalizeSerial)
	Token  string // Token*: the account token's id, the <id> of fst_<id>_<secret>
	// Hash is the SHA-256 of a secret, never the secret: the gateway's ingest
	// key (GatewayPut), the token's secret (TokenPut), the verification code
	// (CodeSet; zero: no code pending).
	Hash [32]byte
	// PrevHash is the gateway's previous ingest key hash, accepted until
	// Expires (GatewayRekey).
	PrevHash [32]byte
	// PasswordHash is the account's salted password hash as the HTTP layer
	// computes it (PBKDF2 with its parameters and salt), opaque bytes up to
	// MaxPasswordHash long; "" = no password (PasswordSet). A string rather
	// than a []byte so that Event stays comparable.
	PasswordHash string
}

// MaxCapacity bounds a system's capacity: 1 GW, beyond any rooftop or
// solar park this platform serves.
const MaxCapacity = 1_000_000_000

// ExpiresAt returns Expires as a time; zero if the grant is permanent.
func (e Event) ExpiresAt() time.Time {
	if e.Expires == 0 {
		return time.Time{}
	}
	return time.UnixMilli(e.Expires).UTC()
}

// used returns e with only the fields its kind uses.
func (e Event) used() Event {
	u := Event{Kind: e.Kind, Stamp: e.Stamp, Actor: e.Actor}
	switch e.Kind {
	case KindAccountRegister:
		u.Account, u.Email = e.Account, e.Email
	case KindAccountVerify:
		u.Account, u.Verified = e.Account, e.Verified
	case KindAccountSupport:
		u.Account, u.Support = e.Account, e.Support
	case KindOrgPut:
		u.Org, u.Name = e.Org, e.Name
	case KindMemberPut:
		u.Org, u.Email, u.OrgRole = e.Org, e.Email, e.OrgRole
	case KindMemberDelete:
		u.Org, u.Email = e.Org, e.Email
	case KindRolePut:
		u.Org, u.Name, u.Perms = e.Org, e.Name, e.Perms
	case KindRoleDelete:
		u.Org, u.Name = e.Org, e.Name
	case KindSystemPut:
		u.System, u.GUID, u.Name, u.Address, u.Timezone, u.Monitored, u.Org =
			e.System, e.GUID, e.Name, e.Address, e.Timezone, e.Monitored, e.Org
	case KindSystemDelete:
		u.System = e.System
	case KindOwnerSet:
		u.System, u.Email = e.System, e.Email
	case KindGrantPut:
		u.System, u.Grantee, u.Role, u.Expires = e.System, e.Grantee, e.Role, e.Expires
	case KindGrantDelete:
		u.System, u.Grantee = e.System, e.Grantee
	case KindGatewayPut:
		u.System, u.Gateway, u.Serial, u.Hash = e.System, e.Gateway, e.Serial, e.Hash
	case KindGatewayDelete:
		u.System, u.Gateway = e.System, e.Gateway
	case KindTokenPut:
		u.Account, u.Token, u.Hash = e.Account, e.Token, e.Hash
	case KindTokenDelete:
		u.Token = e.Token
	case KindPasswordSet:
		u.Account, u.PasswordHash = e.Account, e.PasswordHash
	case KindCodeSet:
		u.Account, u.Hash, u.Expires = e.Account, e.Hash, e.Expires
	case KindAccountName:
		u.Account, u.Name = e.Account, e.Name
	case KindTokenMeta:
		u.Token, u.Expires, u.Name = e.Token, e.Expires, e.Name
	case KindGatewayRekey:
		u.System, u.Gateway, u.Serial, u.Hash, u.PrevHash, u.Expires = e.System, e.Gateway, e.Serial, e.Hash, e.PrevHash, e.Expires
	case KindSystemCapacity:
		u.System, u.Capacity = e.System, e.Capacity
	}
	return u
}

// Validate reports whether e is a well-formed event: a known kind, a stamp,
// every field its kind uses in range, and no other field set. It does not
// look at the state: a valid event always applies (possibly as a no-op, if a
// later change to the same register is already known).
func (e Event) Validate() error {
	if e.Kind == 0 || e.Kind >= numKinds {
		return fmt.Errorf("%w: event kind %d", ErrInvalid, uint8(e.Kind))
	}
	if e.Stamp.HLC == 0 {
		return fmt.Errorf("%w: %s event without a stamp", ErrInvalid, e.Kind)
	}
	if e != e.used() {
		return fmt.Errorf("%w: %s event sets fields its kind does not use", ErrInvalid, e.Kind)
	}
	if err := checkSystem(e.System); err != nil {
		return err
	}
	var err error
	switch e.Kind {
	case KindAccountRegister:
		err = checkAccount(e.Account)
		if err == nil {
			err = checkEmail(e.Email)
		}
	case KindAccountVerify, KindAccountSupport:
		err = checkAccount(e.Account)
	case KindOrgPut:
		err = checkOrg(e.Org)
		if err == nil {
			err = checkName("org name", e.Name)
		}
	case KindMemberPut:
		err = checkOrg(e.Org)
		if err == nil {
			err = checkEmail(e.Email)
		}
		if err == nil {
			err = checkOrgRole(e.OrgRole)
		}
	case KindMemberDelete:
		err = checkOrg(e.Org)
		if err == nil {
			err = checkEmail(e.Email)
		}
	case KindRolePut:
		err = checkOrg(e.Org)
		if err == nil {
			err = checkRoleName(e.Name)
		}
		if err == nil && !MemberPerms.Has(e.Perms) {
			err = fmt.Errorf("%w: member role permissions %s beyond %s", ErrInvalid, e.Perms&^MemberPerms, MemberPerms)
		}
	case KindRoleDelete:
		err = checkOrg(e.Org)
		if err == nil {
			err = checkRoleName(e.Name)
		}
	case KindSystemPut:
		err = checkSystemText(e.GUID, e.Name, e.Address, e.Timezone)
	case KindSystemDelete:
	case KindOwnerSet:
		err = checkEmail(e.Email)
	case KindGrantPut:
		err = e.Grantee.check()
		if err == nil && (e.Role < RoleViewer || e.Role > RoleAdmin) {
			err = fmt.Errorf("%w: grant role %d (viewer to admin; the owner is set by transfer)", ErrInvalid, uint8(e.Role))
		}
		if err == nil && e.Expires < 0 {
			err = fmt.Errorf("%w: negative expiry", ErrInvalid)
		}
	case KindGrantDelete:
		err = e.Grantee.check()
	case KindGatewayPut:
		err = checkGateway(e.Gateway)
		if err == nil {
			err = checkSerial(e.Serial)
		}
		if err == nil && e.Hash == ([32]byte{}) {
			err = fmt.Errorf("%w: gateway without an ingest key hash", ErrInvalid)
		}
	case KindGatewayDelete:
		err = checkGateway(e.Gateway)
	case KindTokenPut:
		err = checkAccount(e.Account)
		if err == nil {
			err = checkToken(e.Token, e.Hash)
		}
	case KindTokenDelete:
		err = checkTokenID(e.Token)
	case KindPasswordSet:
		err = checkAccount(e.Account)
		if err == nil {
			err = checkPasswordHash(len(e.PasswordHash))
		}
	case KindCodeSet:
		err = checkAccount(e.Account)
		if err == nil {
			err = checkCode(e.Hash, e.Expires)
		}
	case KindAccountName:
		err = checkAccount(e.Account)
		if err == nil {
			err = checkText("account name", e.Name, maxName)
		}
	case KindTokenMeta:
		err = checkTokenID(e.Token)
		if err == nil && e.Expires <= 0 {
			err = fmt.Errorf("%w: token without an expiry", ErrInvalid)
		}
		if err == nil {
			err = checkText("token client", e.Name, maxName)
		}
	case KindGatewayRekey:
		err = checkGateway(e.Gateway)
		if err == nil {
			err = checkSerial(e.Serial)
		}
		if err == nil && (e.Hash == ([32]byte{}) || e.PrevHash == ([32]byte{})) {
			err = fmt.Errorf("%w: gateway key rotation without both key hashes", ErrInvalid)
		}
		if err == nil && e.Expires <= 0 {
			err = fmt.Errorf("%w: gateway key rotation without an end of grace", ErrInvalid)
		}
	case KindSystemCapacity:
		if e.Capacity > MaxCapacity {
			err = fmt.Errorf("%w: capacity %d W over %d W", ErrInvalid, e.Capacity, MaxCapacity)
		}
	}
	return err
}

func checkAccount(a AccountID) error {
	if a == 0 {
		return fmt.Errorf("%w: account id 0", ErrInvalid)
	}
	return nil
}

func checkOrg(o OrgID) error {
	if o == 0 {
		return fmt.Errorf("%w: org id 0", ErrInvalid)
	}
	return nil
}

func checkName(what, s string) error {
	if s == "" {
		return fmt.Errorf("%w: empty %s", ErrInvalid, what)
	}
	return checkText(what, s, maxName)
}

func checkSystemText(guid, name, address, tz string) error {
	if guid == "" {
		return fmt.Errorf("%w: empty GUID", ErrInvalid)
	}
	if err := checkText("GUID", guid, maxShort); err != nil {
		return err
	}
	if err := checkText("system name", name, maxName); err != nil {
		return err
	}
	if err := checkText("address", address, maxText); err != nil {
		return err
	}
	return checkText("timezone", tz, maxShort)
}

// Encoding, version 1. Compact, canonical binary:
//
//	version  byte (1)
//	kind     byte
//	hlc      uvarint
//	node     uvarint (≤ 65535)
//	actor    uvarint (≤ 2³²-1)
//	payload  the kind's fields, in the order of the Kind comment:
//	         ids and Perms as uvarint, Role as uvarint,
//	         strings as uvarint length + bytes, bools as one byte 0/1,
//	         Expires as uvarint (Unix ms, 0 = never),
//	         a Principal as byte 0 + e-mail string, or byte 1 + org uvarint,
//	         Hash (and PrevHash) as its 32 bytes, PasswordHash as uvarint length + bytes
//	         (any bytes, not necessarily UTF-8).
//
// Decoding accepts exactly what encoding produces (minimal varints, bools 0
// or 1, no trailing bytes, a valid event), so bytes and events correspond one
// to one and a stored event can be compared or deduplicated by its bytes.
const eventVersion = 1

// maxEventSize bounds an encoded event: the longest fields of a SystemPut
// plus varints. Longer input is rejected before it is parsed.
const maxEventSize = 2 + 3*binary.MaxVarintLen64 + 4*binary.MaxVarintLen32 + maxShort*2 + maxName + maxText + 64

// AppendBinary appends the encoding of e to b. It fails only if e is invalid.
func (e Event) AppendBinary(b []byte) ([]byte, error) {
	if err := e.Validate(); err != nil {
		return b, err
	}
	b = append(b, eventVersion, byte(e.Kind))
	b = binary.AppendUvarint(b, e.Stamp.HLC)
	b = binary.AppendUvarint(b, uint64(e.Stamp.Node))
	b = binary.AppendUvarint(b, uint64(e.Actor))
	str := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	flag := func(v bool) {
		if v {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
	}
	grantee := func(p Principal) {
		if p.IsOrg() {
			b = append(b, 1)
			b = binary.AppendUvarint(b, uint64(p.Org))
		} else {
			b = append(b, 0)
			str(p.Email)
		}
	}
	uv := func(v uint64) { b = binary.AppendUvarint(b, v) }
	switch e.Kind {
	case KindAccountRegister:
		uv(uint64(e.Account))
		str(e.Email)
	case KindAccountVerify:
		uv(uint64(e.Account))
		flag(e.Verified)
	case KindAccountSupport:
		uv(uint64(e.Account))
		flag(e.Support)
	case KindOrgPut:
		uv(uint64(e.Org))
		str(e.Name)
	case KindMemberPut:
		uv(uint64(e.Org))
		str(e.Email)
		str(e.OrgRole)
	case KindMemberDelete:
		uv(uint64(e.Org))
		str(e.Email)
	case KindRolePut:
		uv(uint64(e.Org))
		str(e.Name)
		uv(uint64(e.Perms))
	case KindRoleDelete:
		uv(uint64(e.Org))
		str(e.Name)
	case KindSystemPut:
		uv(uint64(e.System))
		str(e.GUID)
		str(e.Name)
		str(e.Address)
		str(e.Timezone)
		flag(e.Monitored)
		uv(uint64(e.Org))
	case KindSystemDelete:
		uv(uint64(e.System))
	case KindOwnerSet:
		uv(uint64(e.System))
		str(e.Email)
	case KindGrantPut:
		uv(uint64(e.System))
		grantee(e.Grantee)
		uv(uint64(e.Role))
		uv(uint64(e.Expires))
	case KindGrantDelete:
		uv(uint64(e.System))
		grantee(e.Grantee)
	case KindGatewayPut:
		uv(uint64(e.System))
		uv(uint64(e.Gateway))
		str(e.Serial)
		b = append(b, e.Hash[:]...)
	case KindGatewayDelete:
		uv(uint64(e.System))
		uv(uint64(e.Gateway))
	case KindTokenPut:
		uv(uint64(e.Account))
		str(e.Token)
		b = append(b, e.Hash[:]...)
	case KindTokenDelete:
		str(e.Token)
	case KindPasswordSet:
		uv(uint64(e.Account))
		str(e.PasswordHash)
	case KindCodeSet:
		uv(uint64(e.Account))
		b = append(b, e.Hash[:]...)
		uv(uint64(e.Expires))
	case KindAccountName:
		uv(uint64(e.Account))
		str(e.Name)
	case KindTokenMeta:
		str(e.Token)
		uv(uint64(e.Expires))
		str(e.Name)
	case KindGatewayRekey:
		uv(uint64(e.System))
		uv(uint64(e.Gateway))
		str(e.Serial)
		b = append(b, e.Hash[:]...)
		b = append(b, e.PrevHash[:]...)
		uv(uint64(e.Expires))
	case KindSystemCapacity:
		uv(uint64(e.System))
		uv(uint64(e.Capacity))
	}
	return b, nil
}

// MarshalBinary returns the encoding of e.
func (e Event) MarshalBinary() ([]byte, error) { return e.AppendBinary(make([]byte, 0, 64)) }

// UnmarshalBinary decodes an event. It accepts only the canonical encoding of
// a valid event; anything else is an error wrapping ErrInvalid. The decoded
// strings do not alias data.
func (e *Event) UnmarshalBinary(data []byte) error {
	if len(data) > maxEventSize {
		return fmt.Errorf("%w: event of %d bytes, limit %d", ErrInvalid, len(data), maxEventSize)
	}
	d := decoder{b: data}
	if v := d.byte(); d.err == nil && v != eventVersion {
		return fmt.Errorf("%w: event encoding version %d, want %d", ErrInvalid, v, eventVersion)
	}
	var ev Event
	ev.Kind = Kind(d.byte())
	ev.Stamp.HLC = d.uvarint(1<<64 - 1)
	ev.Stamp.Node = uint16(d.uvarint(1<<16 - 1))
	ev.Actor = AccountID(d.uvarint(1<<32 - 1))
	id := func() uint32 { return uint32(d.uvarint(1<<32 - 1)) }
	switch ev.Kind {
	case KindAccountRegister:
		ev.Account = AccountID(id())
		ev.Email = d.str(maxEmail)
	case KindAccountVerify:
		ev.Account = AccountID(id())
		ev.Verified = d.flag()
	case KindAccountSupport:
		ev.Account = AccountID(id())
		ev.Support = d.flag()
	case KindOrgPut:
		ev.Org = OrgID(id())
		ev.Name = d.str(maxName)
	case KindMemberPut:
		ev.Org = OrgID(id())
		ev.Email = d.str(maxEmail)
		ev.OrgRole = d.str(maxName)
	case KindMemberDelete:
		ev.Org = OrgID(id())
		ev.Email = d.str(maxEmail)
	case KindRolePut:
		ev.Org = OrgID(id())
		ev.Name = d.str(maxName)
		ev.Perms = Perm(d.uvarint(1<<16 - 1))
	case KindRoleDelete:
		ev.Org = OrgID(id())
		ev.Name = d.str(maxName)
	case KindSystemPut:
		ev.System = SystemID(id())
		ev.GUID = d.str(maxShort)
		ev.Name = d.str(maxName)
		ev.Address = d.str(maxText)
		ev.Timezone = d.str(maxShort)
		ev.Monitored = d.flag()
		ev.Org = OrgID(id())
	case KindSystemDelete:
		ev.System = SystemID(id())
	case KindOwnerSet:
		ev.System = SystemID(id())
		ev.Email = d.str(maxEmail)
	case KindGrantPut:
		ev.System = SystemID(id())
		ev.Grantee = d.principal()
		ev.Role = Role(d.uvarint(255))
		ev.Expires = int64(d.uvarint(1<<63 - 1))
	case KindGrantDelete:
		ev.System = SystemID(id())
		ev.Grantee = d.principal()
	case KindGatewayPut:
		ev.System = SystemID(id())
		ev.Gateway = GatewayID(id())
		ev.Serial = d.str(maxShort)
		ev.Hash = d.hash()
	case KindGatewayDelete:
		ev.System = SystemID(id())
		ev.Gateway = GatewayID(id())
	case KindTokenPut:
		ev.Account = AccountID(id())
		ev.Token = d.str(maxTokenID)
		ev.Hash = d.hash()
	case KindTokenDelete:
		ev.Token = d.str(maxTokenID)
	case KindPasswordSet:
		ev.Account = AccountID(id())
		ev.PasswordHash = d.bytes(MaxPasswordHash)
	case KindCodeSet:
		ev.Account = AccountID(id())
		ev.Hash = d.hash()
		ev.Expires = int64(d.uvarint(1<<63 - 1))
	case KindAccountName:
		ev.Account = AccountID(id())
		ev.Name = d.str(maxName)
	case KindTokenMeta:
		ev.Token = d.str(maxTokenID)
		ev.Expires = int64(d.uvarint(1<<63 - 1))
		ev.Name = d.str(maxName)
	case KindGatewayRekey:
		ev.System = SystemID(id())
		ev.Gateway = GatewayID(id())
		ev.Serial = d.str(maxShort)
		ev.Hash = d.hash()
		ev.PrevHash = d.hash()
		ev.Expires = int64(d.uvarint(1<<63 - 1))
	case KindSystemCapacity:
		ev.System = SystemID(id())
		ev.Capacity = uint32(d.uvarint(MaxCapacity))
	default:
		if d.err == nil {
			return fmt.Errorf("%w: event kind %d", ErrInvalid, uint8(ev.Kind))
		}
	}
	if d.err == nil && len(d.b) > 0 {
		d.err = fmt.Errorf("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return fmt.Errorf("%w: decode %s event: %w", ErrInvalid, ev.Kind, d.err)
	}
	if err := ev.Validate(); err != nil {
		return err
	}
	*e = ev
	return nil
}

// decoder reads the canonical encoding; the first error sticks and later
// reads return zero values.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf(format, args...)
	}
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.fail("truncated")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) uvarint(limit uint64) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	switch {
	case n == 0:
		d.fail("truncated varint")
		return 0
	case n < 0:
		d.fail("varint overflows 64 bits")
		return 0
	case n > 1 && d.b[n-1] == 0:
		d.fail("non-minimal varint")
		return 0
	case v > limit:
		d.fail("value %d out of range (max %d)", v, limit)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) str(limit int) string {
	s := d.bytes(limit)
	if !utf8.ValidString(s) {
		d.fail("string is not UTF-8")
	}
	return s
}

// bytes reads a length-prefixed run of any bytes, returned as a string.
func (d *decoder) bytes(limit int) string {
	n := d.uvarint(uint64(limit))
	if d.err != nil {
		return ""
	}
	if uint64(len(d.b)) < n {
		d.fail("truncated string")
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) hash() (h [32]byte) {
	if d.err != nil {
		return h
	}
	if len(d.b) < len(h) {
		d.fail("truncated hash")
		return h
	}
	copy(h[:], d.b)
	d.b = d.b[len(h):]
	return h
}

func (d *decoder) flag() bool {
	switch v := d.byte(); v {
	case 0:
		return false
	case 1:
		return true
	default:
		d.fail("bool byte %d", v)
		return false
	}
}

func (d *decoder) principal() Principal {
	switch tag := d.byte(); tag {
	case 0:
		return Principal{Email: d.str(maxEmail)}
	case 1:
		return Principal{Org: OrgID(d.uvarint(1<<32 - 1))}
	default:
		d.fail("principal tag %d", tag)
		return Principal{}
	}
}
