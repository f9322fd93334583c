// Package webtest holds the dashboard's browser tests (DESIGN §8): headless
// Chromium, driven with chromedp, against a real `fleetscope serve --demo`
// on the embedded engine, built and started by the tests. They are a
// package of their own so that they can be run, or left out, on their own:
//
//	FLEETSCOPE_REQUIRE_ENGINE=1 go test ./api/web/webtest -v
//
// Without Chromium (Debian's chromium package) or the embedded engine they
// skip, and fail when FLEETSCOPE_REQUIRE_ENGINE=1 (as make test and CI set
// it). Screenshots of each page go to FLEETSCOPE_SCREENSHOTS, by default
// screenshots/ at the repository's root (gitignored).
package webtest
