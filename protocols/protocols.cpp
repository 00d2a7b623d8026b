// Protocol servers are added here.
namespace wharf::protocols {}
