// Package acl holds who may see and do what: accounts, organizations and
// their member roles, systems and grants, with the rules of DESIGN §4. Every
// change is an event; the current state is the fold of the events, and an
// index of roaring bitmaps (per account and permission, the system ids it
// holds) is kept current on every change so that a query never walks the
// relation graph.
package acl
