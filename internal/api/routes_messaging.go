package api

// routesMessaging registers the messaging routes.
func (s *Server) routesMessaging() {}
