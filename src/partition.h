/*
 * partition.h
 *		The partition a database is (DESIGN.md, "More than one node"), and
 *		the functions a router routes by: an id's partition, a code's, an
 *		owner's hash.
 */
#ifndef PAYEXT_PARTITION_H
#define PAYEXT_PARTITION_H

/*
 * This database's partition: 0 on a single node, 0-99 behind a router,
 * fixed for life (payext.partition_info, set by set_partition()).  Holds a
 * share lock on payext.partition_info to the end of the transaction, so
 * that set_partition() cannot change it under an id being made.
 */
extern int	PayextPartition(void);

/* Registers the cache's invalidation; from _PG_init(). */
extern void PartitionInit(void);

#endif							/* PAYEXT_PARTITION_H */
