package mail

import (
	"strings"
	"testing"
	"time"
)

func TestTemplates(t *testing.T) {
	const base = "https://fleet.example/"
	expires := time.Date(2026, 3, 2, 15, 4, 0, 0, time.FixedZone("CET", 3600))
	for _, tc := range []struct {
		name     string
		m        Message
		kind     string
		subject  []string // the subject contains each
		text     []string // the text contains each
		notInAny []string // neither contains any
	}{
		{
			name:    "verification",
			m:       VerificationMail(base, "ana@example.com", "ABCD234XYZ", 24*time.Hour),
			kind:    KindVerification,
			subject: []string{"Verify"},
			text:    []string{"\n    ABCD234XYZ\n", "24 hours", "https://fleet.example/"},
		},
		{
			name:     "password reset",
			m:        PasswordResetMail("", "ana@example.com", "QWERTY2345", 90*time.Minute),
			kind:     KindPasswordReset,
			subject:  []string{"Reset", "password"},
			text:     []string{"\n    QWERTY2345\n", "ana@example.com", "1 hour 30 minutes", "works once", "ignore this mail"},
			notInAny: []string{"http"},
		},
		{
			name: "system invitation",
			m: SystemInvitationMail(base, SystemInvitation{
				To: "bob+solar@example.com", InviterName: "Ana Müller", InviterEmail: "ana@solarco.example",
				SystemName: "Müller Residence", SystemGUID: "3F2A9C01-77", Role: "installer", Expires: expires,
			}),
			kind:    KindSystemInvitation,
			subject: []string{"Ana Müller", "Müller Residence"},
			text: []string{
				"Ana Müller (ana@solarco.example)", `"Müller Residence"`, "3F2A9C01-77", "installer (",
				"until 2 March 2026, 14:04 UTC",
				"\nhttps://fleet.example/#/register?email=bob%2Bsolar%40example.com\n",
				"verified",
			},
		},
		{
			name: "permanent system invitation without inviter name",
			m: SystemInvitationMail("https://fleet.example", SystemInvitation{
				To: "bob@example.com", InviterEmail: "ana@solarco.example", SystemName: "Roof", SystemGUID: "G1", Role: "viewer",
			}),
			kind:    KindSystemInvitation,
			subject: []string{"ana@solarco.example invited you to Roof"},
			text:    []string{"ana@solarco.example invited you", "permanent", "viewer (see", "https://fleet.example/#/register?email=bob%40example.com"},
		},
		{
			name: "org invitation",
			m: OrgInvitationMail(base, OrgInvitation{
				To: "carla@example.com", InviterName: "Ana", InviterEmail: "ana@solarco.example",
				OrgName: "SolarCo GmbH", Role: "Basic customer", Permissions: []string{"view", "data"},
			}),
			kind:    KindOrgInvitation,
			subject: []string{"Ana", "SolarCo GmbH"},
			text:    []string{"Ana (ana@solarco.example)", `"SolarCo GmbH"`, "Basic customer (allows view, data)", "register?email=carla%40example.com"},
		},
		{
			name: "org admin invitation",
			m: OrgInvitationMail(base, OrgInvitation{
				To: "carla@example.com", InviterEmail: "ana@solarco.example", OrgName: "SolarCo GmbH", Role: "org_admin",
			}),
			kind: KindOrgInvitation,
			text: []string{"org_admin (manage the organization"},
		},
		{
			name: "welcome",
			m: WelcomeMail(base, Welcome{
				To: "owner@example.com", InstallerOrg: "SolarCo GmbH", SystemName: "Müller Residence",
				SystemGUID: "3F2A9C01-77", Address: "Hauptstraße 1, 10115 Berlin",
			}),
			kind:    KindWelcome,
			subject: []string{"Welcome", "Müller Residence"},
			text: []string{
				"SolarCo GmbH has commissioned", "owner@example.com", "Müller Residence", "3F2A9C01-77",
				"Hauptstraße 1, 10115 Berlin", "https://fleet.example/#/register?email=owner%40example.com",
				"share it", "please tell SolarCo GmbH",
			},
		},
		{
			name:     "welcome without installer or address",
			m:        WelcomeMail(base, Welcome{To: "owner@example.com", SystemName: "Roof", SystemGUID: "G1"}),
			kind:     KindWelcome,
			text:     []string{"Your installer has commissioned", "please tell your installer"},
			notInAny: []string{"Address:", "Installer:"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.m
			if err := m.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if m.Kind != tc.kind {
				t.Fatalf("Kind %q, want %q", m.Kind, tc.kind)
			}
			for _, s := range tc.subject {
				if !strings.Contains(m.Subject, s) {
					t.Errorf("subject %q does not contain %q", m.Subject, s)
				}
			}
			for _, s := range tc.text {
				if !strings.Contains(m.Text, s) {
					t.Errorf("text does not contain %q:\n%s", s, m.Text)
				}
			}
			for _, s := range tc.notInAny {
				if strings.Contains(m.Subject, s) || strings.Contains(m.Text, s) {
					t.Errorf("mail contains %q:\n%s\n%s", s, m.Subject, m.Text)
				}
			}
			// A code stays out of the subject, which lock screens show.
			if strings.Contains(m.Subject, "ABCD234XYZ") || strings.Contains(m.Subject, "QWERTY2345") {
				t.Errorf("the code is in the subject %q", m.Subject)
			}
			if !strings.HasSuffix(m.Text, "\n") || strings.Contains(m.Text, "\n\n\n") {
				t.Errorf("text is not tidy paragraphs:\n%q", m.Text)
			}
		})
	}
}

// TestTemplatesPlainText: values are one line of text whatever they hold —
// a name cannot add headers, lines or paragraphs to a mail.
func TestTemplatesPlainText(t *testing.T) {
	evil := "Roof\r\nBcc: eve@example.com\n\nClick https://evil.example\t\x00now"
	long := strings.Repeat("Sonnenstrom ", 50)
	for _, m := range []Message{
		SystemInvitationMail("https://fleet.example", SystemInvitation{To: "bob@example.com", InviterName: evil, InviterEmail: "a@b.example", SystemName: long, SystemGUID: evil, Role: evil}),
		OrgInvitationMail("https://fleet.example", OrgInvitation{To: "bob@example.com", InviterName: evil, OrgName: long, Role: evil, Permissions: []string{evil}}),
		WelcomeMail("https://fleet.example", Welcome{To: "bob@example.com", InstallerOrg: evil, SystemName: long, SystemGUID: evil, Address: evil}),
	} {
		if err := m.Validate(); err != nil {
			t.Fatalf("Validate: %v (subject %q)", err, m.Subject)
		}
		for _, line := range strings.Split(m.Text, "\n") {
			if strings.HasPrefix(line, "Bcc:") || strings.HasPrefix(line, "Click") || strings.ContainsAny(line, "\r\t\x00") {
				t.Fatalf("a value broke out of its line: %q in\n%s", line, m.Text)
			}
		}
		if strings.Contains(m.Text, long) || !strings.Contains(m.Text, "…") {
			t.Fatalf("a long value is not cut:\n%s", m.Text)
		}
	}
}

func TestRegisterURL(t *testing.T) {
	f := func(base, email, want string) {
		t.Helper()
		if got := RegisterURL(base, email); got != want {
			t.Fatalf("RegisterURL(%q, %q) = %q, want %q", base, email, got, want)
		}
	}
	f("https://fleet.example", "ana@example.com", "https://fleet.example/#/register?email=ana%40example.com")
	f("https://fleet.example/", "ana@example.com", "https://fleet.example/#/register?email=ana%40example.com")
	f("https://example.com/fleet/", "a+b&c=d#e@example.com", "https://example.com/fleet/#/register?email=a%2Bb%26c%3Dd%23e%40example.com")
	f("https://fleet.example", "jürgen@example.com", "https://fleet.example/#/register?email=j%C3%BCrgen%40example.com")
}

func TestDuration(t *testing.T) {
	f := func(d time.Duration, want string) {
		t.Helper()
		if got := duration(d); got != want {
			t.Fatalf("duration(%v) = %q, want %q", d, got, want)
		}
	}
	f(24*time.Hour, "24 hours")
	f(72*time.Hour, "3 days")
	f(time.Hour, "1 hour")
	f(15*time.Minute, "15 minutes")
	f(time.Minute, "1 minute")
	f(90*time.Minute, "1 hour 30 minutes")
	f(10*time.Second, "a minute")
}
