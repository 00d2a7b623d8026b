// Loading and validation live here.
#include "config/load.h"
