// Package broadcasts implements Kapso's WhatsApp broadcasts: a template
// sent to a list of recipients from one config.
package broadcasts

import (
	"github.com/parleyhq/parley/internal/api"
	"github.com/parleyhq/parley/internal/jobs"
)

// Register registers the broadcast routes.
func Register(s *api.Server) {}

// RegisterJobs registers the broadcast job handlers.
func RegisterJobs(r *jobs.Runner, s *api.Server) {}
