// Package displaynames implements Kapso's display-name requests: asking
// Meta to change a phone number's display name, and following the review.
package displaynames

import (
	"github.com/parleyhq/parley/internal/api"
	"github.com/parleyhq/parley/internal/jobs"
)

// Register registers the display-name request routes.
func Register(s *api.Server) {}

// RegisterJobs registers the display-name job handlers.
func RegisterJobs(r *jobs.Runner, s *api.Server) {}
