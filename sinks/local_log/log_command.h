// `wharf log ...`: read a local log from the command line.
//
//   wharf log cat DIR           print every record, oldest first
//   wharf log tail DIR [-n N] [-f]
//                               print the last N records (default 10);
//                               with -f keep printing new ones as they come
//
// Each record prints as one line `offset=.. time=.. topic=.. key=.. bytes=..`,
// one indented line per header, and the value (bytes outside printable
// ASCII escaped as \xNN).
#pragma once

namespace wharf::sinks::local_log {

// argv[0] is "log" (what follows `wharf`). Returns the process exit code.
int run_log_command(int argc, char** argv);

}  // namespace wharf::sinks::local_log
