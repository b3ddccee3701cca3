/*
 * Room names and the `rooms` claim, see room_access.h.
 */
#include "lib/room_access.h"

#include <string.h>

bool rr_room_name_valid(const char *name, size_t len)
{
    if (len == 0 || len > RR_ROOM_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == ':' || c == '-'))
            return false;
    }
    return true;
}

bool rr_room_allowed(const json_t *claim, const char *room, size_t len)
{
    if (!claim)
        return true;
    for (size_t i = 0; i < json_array_size(claim); i++) {
        const json_t *v = json_array_get(claim, i);
        if (!json_is_string(v))
            continue;
        const char *p = json_string_value(v);
        size_t pl = json_string_length(v);
        if (pl > 0 && p[pl - 1] == '*') {
            if (len >= pl - 1 && memcmp(room, p, pl - 1) == 0)
                return true;
        } else if (pl == len && memcmp(room, p, len) == 0) {
            return true;
        }
    }
    return false;
}
