# Master: ZeroMQ only from the workers' security group; SSH and web UI only from admin_cidr.
# Workers: SSH only from admin_cidr; no other ingress (workers connect out to the master).
# Both: egress to target_egress_cidrs (the target, package mirrors, the master inside the VPC).

resource "aws_security_group" "master" {
  name        = "${var.name}-master"
  description = "loadgen master: ZeroMQ from workers, SSH/web from admin"
  vpc_id      = local.vpc_id

  tags = {
    Name = "${var.name}-master"
  }
}

resource "aws_security_group" "worker" {
  name        = "${var.name}-worker"
  description = "loadgen workers: SSH from admin, egress to the target"
  vpc_id      = local.vpc_id

  tags = {
    Name = "${var.name}-worker"
  }
}

resource "aws_vpc_security_group_ingress_rule" "master_zmq_from_workers" {
  security_group_id            = aws_security_group.master.id
  description                  = "loadgen ZeroMQ from workers only"
  ip_protocol                  = "tcp"
  from_port                    = var.zmq_port
  to_port                      = var.zmq_port
  referenced_security_group_id = aws_security_group.worker.id
}

resource "aws_vpc_security_group_ingress_rule" "master_ssh_from_admin" {
  security_group_id = aws_security_group.master.id
  description       = "SSH from the admin CIDR"
  ip_protocol       = "tcp"
  from_port         = 22
  to_port           = 22
  cidr_ipv4         = var.admin_cidr
}

resource "aws_vpc_security_group_ingress_rule" "master_web_from_admin" {
  count = var.web_port > 0 ? 1 : 0

  security_group_id = aws_security_group.master.id
  description       = "loadgen web UI from the admin CIDR"
  ip_protocol       = "tcp"
  from_port         = var.web_port
  to_port           = var.web_port
  cidr_ipv4         = var.admin_cidr
}

resource "aws_vpc_security_group_ingress_rule" "worker_ssh_from_admin" {
  security_group_id = aws_security_group.worker.id
  description       = "SSH from the admin CIDR"
  ip_protocol       = "tcp"
  from_port         = 22
  to_port           = 22
  cidr_ipv4         = var.admin_cidr
}

resource "aws_vpc_security_group_egress_rule" "master_egress" {
  for_each = toset(var.target_egress_cidrs)

  security_group_id = aws_security_group.master.id
  description       = "outbound (package mirrors, target)"
  ip_protocol       = "-1"
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_egress_rule" "worker_egress" {
  for_each = toset(var.target_egress_cidrs)

  security_group_id = aws_security_group.worker.id
  description       = "outbound to the target and the master"
  ip_protocol       = "-1"
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_egress_rule" "worker_egress_ipv6" {
  for_each = toset(var.target_egress_ipv6_cidrs)

  security_group_id = aws_security_group.worker.id
  description       = "outbound to the target over IPv6"
  ip_protocol       = "-1"
  cidr_ipv6         = each.value
}

resource "aws_vpc_security_group_egress_rule" "worker_to_master_zmq" {
  security_group_id            = aws_security_group.worker.id
  description                  = "ZeroMQ to the master (explicit, for narrowed target_egress_cidrs)"
  ip_protocol                  = "tcp"
  from_port                    = var.zmq_port
  to_port                      = var.zmq_port
  referenced_security_group_id = aws_security_group.master.id
}
