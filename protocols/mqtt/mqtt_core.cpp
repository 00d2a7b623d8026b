// MQTT core sources are added here.
namespace wharf::mqtt {}
