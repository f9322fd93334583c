// Package query answers the dashboards: All Locations search and listing,
// fleet summary, system detail and history. Every answer is restricted to the
// caller's bitmap from the acl package before anything else is computed, and
// a system outside it answers 404.
package query
