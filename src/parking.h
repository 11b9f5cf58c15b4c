/*
 * parking.h
 *		Vehicles, lots, stays and parking payments (SQL layer; the tariff is
 *		tariff.h, plates plate.h).
 */
#ifndef PAYEXT_PARKING_H
#define PAYEXT_PARKING_H

/* Defines payext.max_vehicles. */
extern void ParkingInit(void);

#endif							/* PAYEXT_PARKING_H */
