package acl

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// SystemID is fleetscope's internal id of a system (location, plant). Ids are
// allocated densely by the caller and are the elements of every bitmap; 0 is
// valid, MaxSystemID the largest. An id is never reused after the system is
// deleted.
type SystemID uint32

// MaxSystemID is the largest system id; 2³²−1 is reserved (the GUID index
// stores id+1, keeping 0 for "none").
const MaxSystemID SystemID = 1<<32 - 2

func checkSystem(id SystemID) error {
	if id > MaxSystemID {
		return fmt.Errorf("%w: system id %d beyond %d", ErrInvalid, id, MaxSystemID)
	}
	return nil
}

// AccountID identifies an account. 0 is not an account: it is the actor of
// changes fleetscope makes by itself (configuration, demo data), which go
// through Index.Apply and are never authorized by Authorize.
type AccountID uint32

// OrgID identifies an organization. 0 means "no organization".
type OrgID uint32

// Platform is the actor recorded on events fleetscope creates by itself.
const Platform AccountID = 0

// Text limits. Events and operations carrying longer text are rejected with
// ErrInvalid, so a hostile request cannot make the state or the event log
// grow by more than these per field.
const (
	maxEmail = 254 // RFC 5321 path limit
	maxName  = 256 // org, system and member role names
	maxText  = 512 // address
	maxShort = 128 // GUID, timezone
)

// NormalizeEmail returns the canonical form of an e-mail address: accounts,
// grants and memberships match e-mails case-insensitively, so every e-mail
// is stored and compared in this form.
func NormalizeEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// checkEmail reports whether s is a normalized, plausible e-mail address. It
// does not try to implement RFC 5322: an address proves itself by verification.
func checkEmail(s string) error {
	if s == "" {
		return fmt.Errorf("%w: empty e-mail", ErrInvalid)
	}
	if len(s) > maxEmail {
		return fmt.Errorf("%w: e-mail longer than %d bytes", ErrInvalid, maxEmail)
	}
	if s != NormalizeEmail(s) {
		return fmt.Errorf("%w: e-mail %q is not normalized", ErrInvalid, s)
	}
	at := strings.IndexByte(s, '@')
	if at <= 0 || at == len(s)-1 || strings.IndexByte(s[at+1:], '@') >= 0 {
		return fmt.Errorf("%w: e-mail %q needs exactly one @ between a local part and a domain", ErrInvalid, s)
	}
	if err := checkText("e-mail", s, maxEmail); err != nil {
		return err
	}
	if strings.ContainsAny(s, " \t") {
		return fmt.Errorf("%w: e-mail %q contains white space", ErrInvalid, s)
	}
	return nil
}

// checkText rejects text that is too long, not UTF-8, or contains control
// characters. Excluding control characters keeps names printable in logs and
// lets the system record pack its text fields with a NUL separator.
func checkText(what, s string, limit int) error {
	if len(s) > limit {
		return fmt.Errorf("%w: %s longer than %d bytes", ErrInvalid, what, limit)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s is not UTF-8", ErrInvalid, what)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w: %s contains a control character", ErrInvalid, what)
		}
	}
	return nil
}

// Principal is who holds a grant: an e-mail address (an account, or an
// invitation while no verified account has that e-mail) or an organization.
// Exactly one of the fields is set; the zero value is no principal.
type Principal struct {
	Email string // normalized; "" for an organization
	Org   OrgID  // 0 for an e-mail
}

// EmailPrincipal returns the principal for an e-mail address, normalized.
func EmailPrincipal(email string) Principal { return Principal{Email: NormalizeEmail(email)} }

// OrgPrincipal returns the principal for an organization.
func OrgPrincipal(org OrgID) Principal { return Principal{Org: org} }

// IsOrg reports whether p is an organization.
func (p Principal) IsOrg() bool { return p.Email == "" && p.Org != 0 }

// String returns the e-mail, or the org id in decimal: the form the HTTP API
// uses for a grantee in DELETE /v1/systems/{id}/grants/{grantee}.
func (p Principal) String() string {
	if p.Email != "" {
		return p.Email
	}
	return strconv.FormatUint(uint64(p.Org), 10)
}

// ParsePrincipal parses the String form: a decimal org id or an e-mail (which
// it normalizes).
func ParsePrincipal(s string) (Principal, error) {
	if n, err := strconv.ParseUint(s, 10, 32); err == nil {
		p := OrgPrincipal(OrgID(n))
		return p, p.check()
	}
	p := EmailPrincipal(s)
	return p, p.check()
}

func (p Principal) check() error {
	switch {
	case p.Email != "" && p.Org != 0:
		return fmt.Errorf("%w: principal is both an e-mail and an org", ErrInvalid)
	case p.Email != "":
		return checkEmail(p.Email)
	case p.Org == 0:
		return fmt.Errorf("%w: no principal", ErrInvalid)
	}
	return nil
}

// ReservedDomain is the platform's own e-mail domain: the support account
// is support@fleetscope.local, made from configuration only, and no address
// of the domain can be registered — else whoever registered it first would
// be the one a later configured support account is promoted from.
const ReservedDomain = "fleetscope.local"

// SupportEmail is the e-mail of the platform support account.
const SupportEmail = "support@" + ReservedDomain

func reservedEmail(email string) bool {
	return strings.HasSuffix(NormalizeEmail(email), "@"+ReservedDomain)
}

// checkGUID accepts a system's external id (the barcode's): 1 to 64
// letters, digits and - _ . :, not all digits — an all-digit GUID would be
// read as a system id by every endpoint that takes either.
func checkGUID(guid string) error {
	if guid == "" || len(guid) > 64 {
		return fmt.Errorf("%w: GUID of %d characters (1 to 64)", ErrInvalid, len(guid))
	}
	digits := true
	for i := 0; i < len(guid); i++ {
		c := guid[i]
		switch {
		case c >= '0' && c <= '9':
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '-', c == '_', c == '.', c == ':':
			digits = false
		default:
			return fmt.Errorf("%w: GUID %q: only letters, digits and the characters - _ . : are allowed", ErrInvalid, guid)
		}
	}
	if digits {
		return fmt.Errorf("%w: GUID %q is all digits, which reads as a system id; add a letter or a separator", ErrInvalid, guid)
	}
	return nil
}
