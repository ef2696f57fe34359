package api

// routesWebhooks registers the webhooks routes.
func (s *Server) routesWebhooks() {}
