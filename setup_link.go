package parley

import "time"

// Setup link statuses (semantics.md §9.2).
const (
	SetupLinkActive  = "active"
	SetupLinkUsed    = "used"
	SetupLinkExpired = "expired"
	SetupLinkRevoked = "revoked"
)

// Setup link connection types.
const (
	ConnectionCoexistence = "coexistence"
	ConnectionDedicated   = "dedicated"
)

// SetupLinkTTL is how long a new setup link stays valid by default.
const SetupLinkTTL = 30 * 24 * time.Hour

// SetupLinkThemeKeys are the colours a setup link's theme_config may set.
var SetupLinkThemeKeys = []string{
	"primary_color", "primary_foreground_color", "background_color", "text_color", "muted_text_color", "card_color",
	"muted_color", "border_color", "secondary_color", "secondary_foreground_color", "destructive_color",
	"destructive_foreground_color",
}

// SetupLink is a one-time onboarding link a project gives its customer to
// connect a WhatsApp number.
type SetupLink struct {
	ID         string
	ProjectID  string
	CustomerID string
	// Token is the secret part of the link's URL.
	Token string
	// Status is as stored; EffectiveStatus accounts for expiry.
	Status                 string
	ExpiresAt              time.Time
	SuccessRedirectURL     *string
	FailureRedirectURL     *string
	AllowedConnectionTypes []string
	ProvisionPhoneNumber   bool
	PhoneNumberAreaCode    *string
	PhoneNumberCountryISOs []string
	// ThemeConfig maps SetupLinkThemeKeys to #RRGGBB colours; nil when unset.
	ThemeConfig map[string]string
	Language    *string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// EffectiveStatus is the status a client sees at now: an active link past
// its expiry is expired even though no job has rewritten the row.
func (l *SetupLink) EffectiveStatus(now time.Time) string {
	if l.Status == SetupLinkActive && !now.Before(l.ExpiresAt) {
		return SetupLinkExpired
	}
	return l.Status
}
