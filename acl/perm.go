package acl

import (
	"encoding/json"
	"fmt"
	"math/bits"
	"strings"
)

// Perm is a set of permissions. On a system it comes from a Role; in an
// organization from the member's org role.
type Perm uint16

// Permissions, named as in DESIGN §4. PermCreatePlant is an organization
// permission (commission systems under the org); all others are permissions
// on a system. PermAdmin (grant and revoke admin) is held by owner and admin,
// PermOwner (transfer ownership, delete the system) by the owner alone.
const (
	PermView Perm = 1 << iota
	PermData
	PermShare
	PermManageUsers
	PermAddGateway
	PermDeleteDevice
	PermFirmware
	PermCreatePlant
	PermAdmin
	PermOwner

	// SystemPerms are the permissions a role can hold on a system.
	SystemPerms = PermView | PermData | PermShare | PermManageUsers | PermAddGateway |
		PermDeleteDevice | PermFirmware | PermAdmin | PermOwner
	// MemberPerms are the permissions a member role (customer type) may
	// hold; owner-level permissions reach org members only through org_admin.
	MemberPerms = PermView | PermData | PermShare | PermManageUsers | PermAddGateway |
		PermDeleteDevice | PermFirmware | PermCreatePlant
	// AllPerms is every permission.
	AllPerms = SystemPerms | MemberPerms
)

var permNames = [...]string{
	"view", "data", "share", "manage_users", "add_gateway", "delete_device",
	"firmware", "create_plant", "admin", "owner",
}

// ParsePerm parses one permission name.
func ParsePerm(name string) (Perm, error) {
	for i, n := range permNames {
		if n == name {
			return 1 << i, nil
		}
	}
	return 0, fmt.Errorf("%w: unknown permission %q", ErrInvalid, name)
}

// ParsePerms parses a list of permission names into a set.
func ParsePerms(names []string) (Perm, error) {
	var p Perm
	for _, n := range names {
		q, err := ParsePerm(n)
		if err != nil {
			return 0, err
		}
		p |= q
	}
	return p, nil
}

// Has reports whether p holds every permission of q.
func (p Perm) Has(q Perm) bool { return p&q == q }

// Names returns the names of the permissions in p, in declaration order.
func (p Perm) Names() []string {
	names := make([]string, 0, bits.OnesCount16(uint16(p)))
	for i, n := range permNames {
		if p&(1<<i) != 0 {
			names = append(names, n)
		}
	}
	return names
}

// String returns the names joined by commas.
func (p Perm) String() string { return strings.Join(p.Names(), ",") }

// MarshalJSON encodes p as an array of names: ["view","data"].
func (p Perm) MarshalJSON() ([]byte, error) { return json.Marshal(p.Names()) }

// UnmarshalJSON decodes an array of names.
func (p *Perm) UnmarshalJSON(b []byte) error {
	var names []string
	if err := json.Unmarshal(b, &names); err != nil {
		return fmt.Errorf("%w: permissions: %w", ErrInvalid, err)
	}
	q, err := ParsePerms(names)
	if err != nil {
		return err
	}
	*p = q
	return nil
}

// Role is a role on a system. Roles are ordered: each holds every permission
// of the roles below it (DESIGN §4 table), which the index relies on — it
// stores, per principal, the set of systems where its role is at least r.
type Role uint8

// Roles, weakest first. RoleNone is no grant.
const (
	RoleNone Role = iota
	RoleViewer
	RoleData
	RoleUser
	RoleInstaller
	RoleAdmin
	RoleOwner

	numRoles = int(RoleOwner)
)

var roleNames = [...]string{"", "viewer", "data", "user", "installer", "admin", "owner"}

var rolePerms = [...]Perm{
	RoleNone:      0,
	RoleViewer:    PermView,
	RoleData:      PermView | PermData,
	RoleUser:      PermView | PermData | PermShare | PermManageUsers,
	RoleInstaller: PermView | PermData | PermShare | PermManageUsers | PermAddGateway | PermDeleteDevice | PermFirmware,
	RoleAdmin:     PermView | PermData | PermShare | PermManageUsers | PermAddGateway | PermDeleteDevice | PermFirmware | PermAdmin,
	RoleOwner:     SystemPerms,
}

// ParseRole parses a role name: owner, admin, installer, user, data, viewer.
func ParseRole(name string) (Role, error) {
	for i, n := range roleNames {
		if i > 0 && n == name {
			return Role(i), nil
		}
	}
	return RoleNone, fmt.Errorf("%w: unknown role %q", ErrInvalid, name)
}

// Perms returns the permissions the role holds on a system.
func (r Role) Perms() Perm {
	if int(r) >= len(rolePerms) {
		return 0
	}
	return rolePerms[r]
}

// String returns the role's name ("" for RoleNone).
func (r Role) String() string {
	if int(r) >= len(roleNames) {
		return fmt.Sprintf("Role(%d)", uint8(r))
	}
	return roleNames[r]
}

// MarshalText encodes the role's name.
func (r Role) MarshalText() ([]byte, error) {
	if r == RoleNone || int(r) >= len(roleNames) {
		return nil, fmt.Errorf("%w: role %d", ErrInvalid, uint8(r))
	}
	return []byte(roleNames[r]), nil
}

// UnmarshalText decodes a role's name.
func (r *Role) UnmarshalText(b []byte) error {
	q, err := ParseRole(string(b))
	if err != nil {
		return err
	}
	*r = q
	return nil
}

// needRole returns the weakest role holding every permission of p, or
// RoleNone if no role does (p is empty or has organization permissions).
func needRole(p Perm) Role {
	if p == 0 {
		return RoleNone
	}
	for r := RoleViewer; r <= RoleOwner; r++ {
		if rolePerms[r].Has(p) {
			return r
		}
	}
	return RoleNone
}

// OrgAdmin is the org role of an organization's primary account holders: they
// hold everything the organization holds and manage its members and member
// roles. Every other org role is the name of a member role.
const OrgAdmin = "org_admin"

func checkRoleName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty member role name", ErrInvalid)
	}
	if name == OrgAdmin {
		return fmt.Errorf("%w: %q is reserved", ErrInvalid, OrgAdmin)
	}
	return checkText("member role name", name, maxName)
}

func checkOrgRole(role string) error {
	if role == OrgAdmin {
		return nil
	}
	return checkRoleName(role)
}
