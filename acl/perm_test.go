package acl

import (
	"encoding/json"
	"errors"
	"testing"
)

// The index stores one set per role level and answers "p on sys" as "role ≥
// needRole(p)"; that is only right if every role holds all permissions of
// the roles below it.
func TestRolesAreNested(t *testing.T) {
	for r := RoleViewer; r < RoleOwner; r++ {
		if !(r + 1).Perms().Has(r.Perms()) || (r+1).Perms() == r.Perms() {
			t.Errorf("%s does not strictly extend %s", r+1, r)
		}
	}
	for b := Perm(1); b <= AllPerms; b <<= 1 {
		r := needRole(b)
		for q := RoleViewer; q <= RoleOwner; q++ {
			if got, want := q >= r && r != RoleNone, q.Perms().Has(b); got != want {
				t.Errorf("needRole(%s) = %s, but %s holding it is %v", b, r, q, want)
			}
		}
	}
}

func TestRolePermsMatchDesignTable(t *testing.T) {
	tests := []struct {
		role  string
		perms []string
	}{
		{"owner", []string{"view", "data", "share", "manage_users", "add_gateway", "delete_device", "firmware", "admin", "owner"}},
		{"admin", []string{"view", "data", "share", "manage_users", "add_gateway", "delete_device", "firmware", "admin"}},
		{"installer", []string{"view", "data", "share", "manage_users", "add_gateway", "delete_device", "firmware"}},
		{"user", []string{"view", "data", "share", "manage_users"}},
		{"data", []string{"view", "data"}},
		{"viewer", []string{"view"}},
	}
	for _, tc := range tests {
		r, err := ParseRole(tc.role)
		if err != nil {
			t.Fatal(err)
		}
		want, err := ParsePerms(tc.perms)
		if err != nil {
			t.Fatal(err)
		}
		if r.Perms() != want || r.String() != tc.role {
			t.Errorf("%s: %s, want %s", tc.role, r.Perms(), want)
		}
	}
}

func TestPermNamesRoundTrip(t *testing.T) {
	for p := Perm(0); p <= AllPerms; p++ {
		q, err := ParsePerms(p.Names())
		if err != nil || q != p {
			t.Fatalf("%d: %v %v", p, q, err)
		}
	}
	b, err := json.Marshal(struct{ P Perm }{PermView | PermCreatePlant})
	if err != nil || string(b) != `{"P":["view","create_plant"]}` {
		t.Fatalf("json: %s %v", b, err)
	}
	var p Perm
	if err := json.Unmarshal([]byte(`["data","firmware"]`), &p); err != nil || p != PermData|PermFirmware {
		t.Fatalf("unmarshal: %s %v", p, err)
	}
	for _, bad := range []string{`["view","fly"]`, `"view"`, `[1]`} {
		if err := json.Unmarshal([]byte(bad), &p); !errors.Is(err, ErrInvalid) {
			t.Errorf("unmarshal %s: %v, want ErrInvalid", bad, err)
		}
	}
}

func TestRoleText(t *testing.T) {
	var v struct{ R Role }
	if err := json.Unmarshal([]byte(`{"R":"installer"}`), &v); err != nil || v.R != RoleInstaller {
		t.Fatalf("%v %v", v.R, err)
	}
	if err := json.Unmarshal([]byte(`{"R":"god"}`), &v); !errors.Is(err, ErrInvalid) {
		t.Fatalf("unknown role: %v", err)
	}
	if _, err := json.Marshal(struct{ R Role }{RoleNone}); err == nil {
		t.Fatal("RoleNone marshals")
	}
}

func TestPrincipalParse(t *testing.T) {
	tests := []struct {
		in   string
		want Principal
		err  bool
	}{
		{"42", OrgPrincipal(42), false},
		{" Home@Example.Test ", EmailPrincipal("home@example.test"), false},
		{"0", Principal{}, true},
		{"home", Principal{}, true},
		{"a@b@c", Principal{}, true},
		{"@b", Principal{}, true},
		{"", Principal{}, true},
	}
	for _, tc := range tests {
		p, err := ParsePrincipal(tc.in)
		if (err != nil) != tc.err || (!tc.err && p != tc.want) {
			t.Errorf("ParsePrincipal(%q) = %+v, %v", tc.in, p, err)
		}
		if !tc.err && p.String() != tc.want.String() {
			t.Errorf("String of %q = %q", tc.in, p.String())
		}
	}
}
