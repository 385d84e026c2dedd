//! Euler angles as the renderer uses them (pitch x, yaw y, roll z; R = Rz·Ry·Rx, as
//! `render::camera::euler_rotation` builds it on the device), on the CPU.

/// `r · p`: the point `p` rotated by the matrix whose rows are `r`.
pub fn rotate(r: &[[f32; 3]; 3], p: [f32; 3]) -> [f32; 3] {
    [0, 1, 2].map(|i| r[i][0] * p[0] + r[i][1] * p[1] + r[i][2] * p[2])
}

/// Euler angles (pitch, yaw, roll), radians → rows of R = Rz(roll)·Ry(yaw)·Rx(pitch).
pub fn euler_matrix(angles: [f32; 3]) -> [[f32; 3]; 3] {
    let [a, b, c] = angles;
    let rx = [
        [1.0, 0.0, 0.0],
        [0.0, a.cos(), -a.sin()],
        [0.0, a.sin(), a.cos()],
    ];
    let ry = [
        [b.cos(), 0.0, b.sin()],
        [0.0, 1.0, 0.0],
        [-b.sin(), 0.0, b.cos()],
    ];
    let rz = [
        [c.cos(), -c.sin(), 0.0],
        [c.sin(), c.cos(), 0.0],
        [0.0, 0.0, 1.0],
    ];
    let mul = |x: [[f32; 3]; 3], y: [[f32; 3]; 3]| {
        let mut o = [[0.0; 3]; 3];
        for i in 0..3 {
            for j in 0..3 {
                o[i][j] = (0..3).map(|k| x[i][k] * y[k][j]).sum();
            }
        }
        o
    };
    mul(mul(rz, ry), rx)
}
