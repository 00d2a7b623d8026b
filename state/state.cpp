// Session state implementations are added here.
namespace wharf::state {}
