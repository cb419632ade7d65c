// The test controls of control.h on the emulator's settings (emulator.h) and EngineTable's switch (engine.h).
#include "control.h"

#include <c10/util/Exception.h>

#include "../engine.h"
#include "emulator.h"

namespace fastgan::simt {

namespace {
constexpr const char* kSchedules[] = {"lowest", "highest", "random"};
}

Settings settings() {
  const Config& c = config();
  return Settings{simt_switch().on.load(), simt_switch().variant, kSchedules[static_cast<int>(c.schedule)],
                  c.seed, c.sms, c.blocks_per_sm, c.watchdog_seconds};
}

void apply(const Settings& s) {
  int schedule = 0;
  while (schedule < 3 && s.schedule != kSchedules[schedule]) ++schedule;
  TORCH_CHECK(schedule < 3, "fastgan SIMT emulator: schedule must be 'lowest', 'highest' or 'random', got '",
              s.schedule, "'");
  TORCH_CHECK(s.sms >= 1 && s.blocks_per_sm >= 1, "fastgan SIMT emulator: sms and blocks_per_sm must be >= 1");
  TORCH_CHECK(s.watchdog_seconds > 0, "fastgan SIMT emulator: watchdog_seconds must be > 0");
  Config& c = config();
  c.schedule = static_cast<Schedule>(schedule);
  c.seed = s.seed;
  c.sms = s.sms;
  c.blocks_per_sm = s.blocks_per_sm;
  c.watchdog_seconds = s.watchdog_seconds;
  simt_switch().variant = s.variant;
  simt_switch().on = s.on;
}

}  // namespace fastgan::simt
