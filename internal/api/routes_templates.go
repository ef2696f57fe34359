package api

// routesTemplates registers the templates routes.
func (s *Server) routesTemplates() {}
