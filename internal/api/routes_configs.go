package api

// routesConfigs registers the configs routes.
func (s *Server) routesConfigs() {}
