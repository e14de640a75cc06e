/* errno names and numbers, both ways ("EBUSY" <-> 16). */
#ifndef FIELDRIG_ERRNAMES_H
#define FIELDRIG_ERRNAMES_H

/* Returns the positive errno for a name ("EBUSY") or a decimal number
 * ("16"), or -1 when the string is neither a known name nor a number in
 * 1..4095.  Names are matched case-sensitively, as <errno.h> spells them. */
int errno_from_name(const char *s);

/* Returns the symbolic name of an errno ("EBUSY"), or NULL if unknown. */
const char *errno_name(int err);

#endif
