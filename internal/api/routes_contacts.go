package api

// routesContacts registers the contacts routes.
func (s *Server) routesContacts() {}
