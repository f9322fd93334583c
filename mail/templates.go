package mail

import (
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// The templates below build the mails of DESIGN §5. baseURL is the
// dashboard's address (https://fleet.example.com, with or without a
// trailing slash); when it is "" the mails name the dashboard without a
// link.

// VerificationMail is the one-time code that proves the address to is its
// holder's (after registration). ttl is how long the code lives; ≤ 0 leaves
// it unsaid.
func VerificationMail(baseURL, to, code string, ttl time.Duration) Message {
	var b strings.Builder
	b.WriteString("Your fleetscope verification code is:\n\n    " + clean(code) + "\n\n")
	b.WriteString("Enter it in the fleetscope dashboard" + at(baseURL) + " to confirm that this address is yours.")
	if ttl > 0 {
		b.WriteString(" It is valid for " + duration(ttl) + ".")
	}
	b.WriteString("\n\nInvitations to systems and organizations sent to this address take effect once it is verified.\n\n")
	b.WriteString("If you did not register with fleetscope, ignore this mail: nothing happens without the code.\n")
	return Message{To: to, Subject: "Verify your fleetscope e-mail address", Text: b.String(), Kind: KindVerification}
}

// PasswordResetMail is the one-time code that sets a new password for the
// account of to. ttl is how long the code lives; ≤ 0 leaves it unsaid.
func PasswordResetMail(baseURL, to, code string, ttl time.Duration) Message {
	var b strings.Builder
	b.WriteString("Someone asked to reset the password of the fleetscope account " + clean(to) + ". The reset code is:\n\n    " + clean(code) + "\n\n")
	b.WriteString("Enter it with a new password in the fleetscope dashboard" + at(baseURL) + ".")
	if ttl > 0 {
		b.WriteString(" It is valid for " + duration(ttl) + " and works once.")
	}
	b.WriteString(" Setting the new password signs out every session.\n\n")
	b.WriteString("If you did not ask for this, ignore this mail: your password stays as it is.\n")
	return Message{To: to, Subject: "Reset your fleetscope password", Text: b.String(), Kind: KindPasswordReset}
}

// SystemInvitation is what SystemInvitationMail says: a grant on a system
// made to the address To.
type SystemInvitation struct {
	To                        string
	InviterName, InviterEmail string
	SystemName, SystemGUID    string
	// Role is the role's name: viewer, data, user, installer, admin or
	// owner.
	Role string
	// Expires is when the access ends; zero is permanent.
	Expires time.Time
}

// SystemInvitationMail tells inv.To who gave it which role on which system,
// until when, and how to register with the address to use it.
func SystemInvitationMail(baseURL string, inv SystemInvitation) Message {
	who := person(inv.InviterName, inv.InviterEmail)
	system := orDefault(clean(inv.SystemName), "a solar system")
	var b strings.Builder
	fmt.Fprintf(&b, "%s invited you to the solar system \"%s\" on fleetscope.\n\n", who, system)
	fields(&b,
		"System", system,
		"GUID", clean(inv.SystemGUID),
		"Role", role(inv.Role, nil),
		"Access", until(inv.Expires),
	)
	register(&b, baseURL, inv.To, "To accept", "The access applies")
	fmt.Fprintf(&b, "If you did not expect this invitation, ignore this mail or ask %s about it.\n", who)
	return Message{To: inv.To, Subject: subject(nameOr(inv.InviterName, inv.InviterEmail) + " invited you to " + system + " on fleetscope"),
		Text: b.String(), Kind: KindSystemInvitation}
}

// OrgInvitation is what OrgInvitationMail says: a membership of an
// organization made to the address To.
type OrgInvitation struct {
	To                        string
	InviterName, InviterEmail string
	OrgName                   string
	// Role is org_admin or the name of a member role (a customer type).
	Role string
	// Permissions are the member role's permission names (view, data,
	// share, ...), listed when given.
	Permissions []string
}

// OrgInvitationMail tells inv.To who added it to which organization with
// which role, and how to register with the address to use it.
func OrgInvitationMail(baseURL string, inv OrgInvitation) Message {
	who := person(inv.InviterName, inv.InviterEmail)
	org := orDefault(clean(inv.OrgName), "an organization")
	var b strings.Builder
	fmt.Fprintf(&b, "%s invited you to join the organization \"%s\" on fleetscope.\n\n", who, org)
	fields(&b,
		"Organization", org,
		"Role", role(inv.Role, inv.Permissions),
	)
	b.WriteString("\nAs a member you see the organization's systems as your role allows.\n")
	register(&b, baseURL, inv.To, "To accept", "The membership applies")
	fmt.Fprintf(&b, "If you did not expect this invitation, ignore this mail or ask %s about it.\n", who)
	return Message{To: inv.To, Subject: subject(nameOr(inv.InviterName, inv.InviterEmail) + " invited you to join " + org + " on fleetscope"),
		Text: b.String(), Kind: KindOrgInvitation}
}

// Welcome is what WelcomeMail says: a system commissioned by an installer
// for the owner To.
type Welcome struct {
	To                     string
	InstallerOrg           string
	SystemName, SystemGUID string
	Address                string
}

// WelcomeMail greets the owner of a newly commissioned system: who
// installed it, which system it is, and how to see it online.
func WelcomeMail(baseURL string, w Welcome) Message {
	installer := clean(w.InstallerOrg)
	system := orDefault(clean(w.SystemName), "your solar system")
	var b strings.Builder
	b.WriteString("Welcome to fleetscope!\n\n")
	fmt.Fprintf(&b, "%s has commissioned your solar system and named you (%s) as its owner.\n\n", orDefault(installer, "Your installer"), clean(w.To))
	fields(&b,
		"System", system,
		"GUID", clean(w.SystemGUID),
		"Address", clean(w.Address),
		"Installer", installer,
	)
	register(&b, baseURL, w.To, "To see it online", "The system appears in your account")
	b.WriteString("As the owner you decide who else may see it: share it with family and friends, add or remove installers.\n\n")
	fmt.Fprintf(&b, "If this mail is not meant for you (an address may have been misspelled), please tell %s so they can correct it.\n", orDefault(installer, "your installer"))
	return Message{To: w.To, Subject: subject("Welcome to fleetscope: your solar system " + system),
		Text: b.String(), Kind: KindWelcome}
}

// RegisterURL is the dashboard's registration page with the address filled
// in: <baseURL>/#/register?email=<address, query-escaped>.
func RegisterURL(baseURL, email string) string {
	return strings.TrimRight(baseURL, "/") + "/#/register?email=" + url.QueryEscape(email)
}

// register writes how to register with to (lead: why), and that what the
// mail grants (applies) takes effect on verification.
func register(b *strings.Builder, baseURL, to, lead, applies string) {
	b.WriteString("\n" + lead + ", register with this e-mail address")
	if baseURL != "" {
		b.WriteString(" (the link fills it in):\n" + RegisterURL(baseURL, to) + "\n")
	} else {
		b.WriteString(" in the fleetscope dashboard.\n")
	}
	b.WriteString(applies + " once you have verified the address with the code we send after registration. ")
	b.WriteString("If you already have a fleetscope account with this address, just sign in.\n\n")
}

// fields writes "Key: value" lines, aligned, skipping empty values.
func fields(b *strings.Builder, kv ...string) {
	width := 0
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] != "" {
			width = max(width, len(kv[i]))
		}
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] != "" {
			fmt.Fprintf(b, "%-*s %s\n", width+1, kv[i]+":", kv[i+1])
		}
	}
}

// roleText explains the system roles and org_admin in a few words; a member
// role's name is the org's own and is shown as is.
var roleText = map[string]string{
	"viewer":    "see the system's status and power",
	"data":      "see the system and its history",
	"user":      "see the system's data, share it and manage its users",
	"installer": "as user, and add gateways, remove devices, update firmware",
	"admin":     "as installer, and grant admin",
	"owner":     "full control",
	"org_admin": "manage the organization, its members and roles",
}

func role(name string, perms []string) string {
	name = clean(name)
	if t, ok := roleText[name]; ok {
		return name + " (" + t + ")"
	}
	if len(perms) > 0 {
		ps := make([]string, len(perms))
		for i, p := range perms {
			ps[i] = clean(p)
		}
		return name + " (allows " + strings.Join(ps, ", ") + ")"
	}
	return name
}

func until(t time.Time) string {
	if t.IsZero() {
		return "permanent"
	}
	return "until " + t.UTC().Format("2 January 2006, 15:04 UTC")
}

// person is "Name (e-mail)", or whichever of the two is known.
func person(name, email string) string {
	name, email = clean(name), clean(email)
	switch {
	case name != "" && email != "":
		return name + " (" + email + ")"
	case name != "":
		return name
	case email != "":
		return email
	}
	return "Someone"
}

func nameOr(name, email string) string {
	return orDefault(orDefault(clean(name), clean(email)), "Someone")
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func at(baseURL string) string {
	if baseURL == "" {
		return ""
	}
	return " (" + strings.TrimRight(baseURL, "/") + "/)"
}

// maxValue bounds an interpolated value, so that a long name cannot push
// the mail's point out of sight.
const maxValue = 120

// clean makes s one line of printable text: control characters become
// spaces, runs of spaces one, and it is cut at maxValue characters.
func clean(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) > maxValue {
		s = string([]rune(s)[:maxValue-1]) + "…"
	}
	return s
}

// subject cuts a subject to what Validate accepts.
func subject(s string) string {
	if utf8.RuneCountInString(s) > maxSubject {
		s = string([]rune(s)[:maxSubject-1]) + "…"
	}
	return s
}

// duration says d in words: "24 hours", "15 minutes", "1 hour 30 minutes".
func duration(d time.Duration) string {
	d = d.Round(time.Minute)
	if d < time.Minute {
		return "a minute"
	}
	unit := func(n int, one string) string {
		if n == 1 {
			return "1 " + one
		}
		return fmt.Sprintf("%d %ss", n, one)
	}
	h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
	switch {
	case h >= 48 && h%24 == 0 && m == 0:
		return unit(h/24, "day")
	case h > 0 && m > 0:
		return unit(h, "hour") + " " + unit(m, "minute")
	case h > 0:
		return unit(h, "hour")
	}
	return unit(m, "minute")
}
