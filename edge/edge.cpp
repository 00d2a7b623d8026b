namespace wharf::edge {}
