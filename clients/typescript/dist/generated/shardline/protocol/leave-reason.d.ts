export declare enum LeaveReason {
    Left = 0,
    Disconnected = 1,
    TimedOut = 2,
    Moved = 3,
    Kicked = 4
}
