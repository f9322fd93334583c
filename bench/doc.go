// Package bench holds fleetscope's load generators and benchmark reports.
// Every figure is printed next to a baseline measured in the same run, as a
// ratio, because the development machine is shared and noisy.
package bench
