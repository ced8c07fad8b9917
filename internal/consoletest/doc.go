// Package consoletest drives lambdad's web console in a real browser
// (Debian's chromium, headless, through chromedp) against a real node, as
// a new user would: its tests follow the seed's steps to reserve
// concurrency, watch the account picture under load, and read the result
// back with the AWS SDK and the Prometheus text parser.
//
// The tests skip when chromium is not installed, unless
// LAMBDAD_REQUIRE_E2E=1, and then they fail. Screenshots of the key pages
// go to the directory named by LAMBDAD_SCREENSHOTS, or else to the test's
// temporary directory.
package consoletest
