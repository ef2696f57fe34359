package api

// routesDelivery registers the delivery routes.
func (s *Server) routesDelivery() {}
